"""What the Redis store adds to the contract: sharing between replicas, namespacing, expiry on
every key, and failing fast when Redis dies or hangs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis

from bridge.conversations import ConversationStore, StoredTurn, StoreUnavailable, open_store
from bridge.conversations.redis_store import RedisStore
from tests.support.redis_server import RedisServer

TURN = StoredTurn(conversation_id="conv-a", turn=1, created_at=1_700_000_000.0)

# Far above the 0.5 s timeouts: only there to turn a hang into a failure instead of a stuck
# test run. The behaviour under test is "raises StoreUnavailable", not a duration.
HANG_GUARD = 10.0

CALLS: list[tuple[str, Callable[[ConversationStore], Awaitable[object]]]] = [
    ("get", lambda store: store.get("fp-1")),
    ("put", lambda store: store.put("fp-2", TURN)),
    ("head", lambda store: store.head("conv-a")),
    ("get_key", lambda store: store.get_key("chat-1")),
    ("put_key", lambda store: store.put_key("chat-1", "conv-a")),
    ("forget_conversation", lambda store: store.forget_conversation("conv-a")),
]


@pytest.fixture
def flushed_redis(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_server.url, decode_responses=True) as client:
        client.flushdb()
        yield client


@pytest.fixture
async def two_replicas(
    redis_server: RedisServer, flushed_redis: redis.Redis
) -> AsyncIterator[tuple[ConversationStore, ConversationStore]]:
    first = await open_store(redis_server.url, ttl=60, max_entries=100)
    second = await open_store(redis_server.url, ttl=60, max_entries=100)
    yield first, second
    await first.close()
    await second.close()


async def test_two_stores_on_one_server_see_each_others_writes(
    two_replicas: tuple[ConversationStore, ConversationStore],
) -> None:
    first, second = two_replicas

    await first.put("fp-1", TURN)
    await second.put_key("chat-1", "conv-a")

    assert await second.get("fp-1") == TURN
    assert await second.head("conv-a") == "fp-1"
    assert await first.get_key("chat-1") == "conv-a"
    await second.forget_conversation("conv-a")
    assert await first.head("conv-a") is None
    assert await first.get_key("chat-1") is None


async def test_every_key_is_namespaced_and_expires(
    two_replicas: tuple[ConversationStore, ConversationStore], flushed_redis: redis.Redis
) -> None:
    store, _ = two_replicas

    await store.put("fp-1", TURN)
    await store.put_key("chat-1", "conv-a")

    keys = flushed_redis.keys("*")
    assert sorted(keys) == [
        "dify-bridge:head:conv-a",
        "dify-bridge:key:chat-1",
        "dify-bridge:keys-of:conv-a",
        "dify-bridge:turn:fp-1",
    ]
    assert all(0 < flushed_redis.pttl(key) <= 60_000 for key in keys)


@pytest.mark.parametrize(("name", "call"), CALLS, ids=[name for name, _ in CALLS])
async def test_killed_server_makes_calls_raise_store_unavailable(
    own_redis_server: RedisServer,
    name: str,
    call: Callable[[ConversationStore], Awaitable[object]],
) -> None:
    store = await open_store(own_redis_server.url, ttl=60, max_entries=100)
    try:
        await store.put("fp-1", TURN)  # a pooled connection is now open to the server

        own_redis_server.stop()

        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(call(store), HANG_GUARD)
    finally:
        await store.close()


async def test_nothing_listening_raises_store_unavailable() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0", ttl=60)
    try:
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.get("fp-1"), HANG_GUARD)
    finally:
        await store.close()


async def test_server_that_never_answers_raises_store_unavailable() -> None:
    # Accepts connections (the kernel completes the handshake) but never replies, like a
    # Redis stuck in a long blocking command or a half-dead network path.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0", ttl=60)
        try:
            with pytest.raises(StoreUnavailable):
                await asyncio.wait_for(store.get("fp-1"), HANG_GUARD)
        finally:
            await store.close()


async def test_store_recovers_when_the_server_comes_back(redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url, ttl=60, max_entries=100)
    try:
        await store.put("fp-0", TURN)  # a pooled connection is now open to the server
        with redis.Redis.from_url(redis_server.url) as admin:
            # Drops every client connection, as a Redis restart would.
            admin.client_kill_filter(_type="normal", skipme=True)

        await store.put("fp-1", TURN)

        assert await store.get("fp-1") == TURN
    finally:
        await store.close()
