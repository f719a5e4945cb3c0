"""Shared fixtures: a real redis-server, and stores of every kind behind one factory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from bridge.conversations import ConversationStore, open_store
from tests.support.redis_server import RedisServer, redis_server_binary, start_redis_server

STORE_KINDS = ["memory", "sqlite", "redis"]
NO_REDIS_SERVER = "redis-server is not installed (CI installs it: apt-get install redis-server)"


def _require_redis_server_binary() -> None:
    if redis_server_binary() is None:
        pytest.skip(NO_REDIS_SERVER)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session; tests flush their database first."""
    _require_redis_server_binary()
    server = start_redis_server()
    yield server
    server.stop()


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A redis-server for one test alone, which may kill it."""
    _require_redis_server_binary()
    server = start_redis_server()
    yield server
    server.stop()


@dataclass
class StoreMaker:
    """Opens stores of one kind; every store it opens shares the same backing data
    (except ``memory``, which lives in the store object itself)."""

    kind: str
    url: str
    opened: list[ConversationStore] = field(default_factory=list)

    async def __call__(self, *, ttl: float = 60.0, max_entries: int = 1000) -> ConversationStore:
        store = await open_store(self.url, ttl=ttl, max_entries=max_entries)
        self.opened.append(store)
        return store


@pytest.fixture(params=STORE_KINDS)
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreMaker]:
    kind: str = request.param
    if kind == "memory":
        url = "memory://"
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'conversations.db'}"
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        with redis.Redis.from_url(server.url) as client:
            client.flushdb()
        url = server.url
    maker = StoreMaker(kind=kind, url=url)
    yield maker
    for store in maker.opened:
        await store.close()


async def eventually(condition: Callable[[], Awaitable[bool]], *, within: float = 15.0) -> bool:
    """Poll until ``condition`` holds; ``within`` only stops a broken store hanging the test."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.1)
    return False
