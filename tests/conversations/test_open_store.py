"""Store URLs understood by open_store."""

from __future__ import annotations

import pytest

from bridge.conversations import open_store
from bridge.conversations.memory import MemoryStore
from bridge.conversations.redis_store import RedisStore


async def test_memory_url_opens_a_memory_store() -> None:
    store = await open_store("memory://", ttl=60, max_entries=10)

    assert isinstance(store, MemoryStore)


async def test_redis_url_opens_a_redis_store_without_connecting() -> None:
    # Port 9 (discard) has no Redis: opening must not fail, only later calls may.
    store = await open_store("redis://127.0.0.1:9/3", ttl=60, max_entries=10)
    await store.close()

    assert isinstance(store, RedisStore)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://relative.db"])
async def test_sqlite_url_without_a_path_is_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="needs a path"):
        await open_store(url, ttl=60, max_entries=10)


@pytest.mark.parametrize("url", ["postgres://db/bridge", "mongodb://x", "memcached://y"])
async def test_unknown_scheme_is_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="unknown conversation store URL"):
        await open_store(url, ttl=60, max_entries=10)
