"""The response store on every backend: round trip, heads, delete, expiry, size bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge.conversations.responses import ResponseStore, StoredResponse, open_response_store
from bridge.openai.responses import OutputMessage, OutputText, ResponseObject
from tests.support.redis_server import RedisServer, redis_server_binary, start_redis_server

CREATED = int(time.time())  # one value: records built twice compare equal


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (CI installs it: apt-get install redis-server)")
    server = start_redis_server()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/conversations.db"
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        import redis

        redis.Redis.from_url(server.url).flushdb()
        yield server.url


def record(
    response_id: str, conversation_id: str | None = "c-1", text: str = "hi"
) -> StoredResponse:
    return StoredResponse(
        id=response_id,
        owner="bridge-owner",
        app_id="app-identity",
        user="alice",
        conversation_id=conversation_id,
        message_id="m-1",
        history=[("user", "q"), ("assistant", text)],
        response=ResponseObject(
            id=response_id,
            created_at=CREATED,
            model="o1",
            status="completed",
            output=[OutputMessage(id="msg_1", status="completed", content=[OutputText(text=text)])],
        ),
    )


async def opened(url: str, **kwargs: float) -> ResponseStore:
    return await open_response_store(
        url, ttl=kwargs.get("ttl", 60.0), max_entries=int(kwargs.get("max_entries", 100))
    )


async def test_round_trip_head_and_delete(store_url):
    store = await opened(store_url)
    try:
        assert await store.get("resp_a") is None
        await store.put(record("resp_a"))
        got = await store.get("resp_a")
        assert got == record("resp_a")
        assert await store.head("c-1") == "resp_a"
        await store.put(record("resp_b"))
        assert await store.head("c-1") == "resp_b"
        await store.put(record("resp_c", conversation_id=None))  # no conversation: no head
        assert await store.head("c-1") == "resp_b"
        assert await store.delete("resp_a") is True
        assert await store.delete("resp_a") is False
        assert await store.get("resp_a") is None
    finally:
        await store.close()


async def test_entries_expire(store_url):
    store = await opened(store_url, ttl=0.2)
    try:
        await store.put(record("resp_a"))
        assert await store.get("resp_a") is not None
        deadline = time.monotonic() + 5
        while await store.get("resp_a") is not None:
            assert time.monotonic() < deadline, "the entry never expired"
            await asyncio.sleep(0.05)
        assert await store.head("c-1") is None
    finally:
        await store.close()


async def test_memory_store_keeps_at_most_max_entries():
    store = await opened("memory://", max_entries=3)
    for index in range(5):
        await store.put(record(f"resp_{index}", conversation_id=f"c-{index}"))
    assert await store.get("resp_0") is None
    assert await store.get("resp_4") is not None


async def test_sqlite_store_survives_a_reopen(tmp_path):
    url = f"sqlite:///{tmp_path}/conversations.db"
    store = await opened(url)
    await store.put(record("resp_a"))
    await store.close()
    again = await opened(url)
    try:
        assert (await again.get("resp_a")) == record("resp_a")
    finally:
        await again.close()
