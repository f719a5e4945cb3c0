"""The ConversationStore contract, run against the memory, SQLite and Redis stores."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from bridge.conversations import ConversationStore, StoredTurn, StoreUnavailable
from tests.conversations.conftest import StoreMaker, eventually


def a_turn(conversation_id: str, turn: int = 1) -> StoredTurn:
    return StoredTurn(conversation_id=conversation_id, turn=turn, created_at=1_700_000_000.5)


async def test_unknown_fingerprint_is_not_found(make_store: StoreMaker) -> None:
    store = await make_store()

    assert await store.get("no-such-fingerprint") is None


async def test_stored_turn_is_found_by_its_fingerprint(make_store: StoreMaker) -> None:
    store = await make_store()

    await store.put("fp-1", a_turn("conv-a", turn=3))

    assert await store.get("fp-1") == a_turn("conv-a", turn=3)


async def test_put_makes_the_fingerprint_the_head_of_its_conversation(
    make_store: StoreMaker,
) -> None:
    store = await make_store()

    await store.put("fp-1", a_turn("conv-a", 1))
    assert await store.head("conv-a") == "fp-1"
    await store.put("fp-2", a_turn("conv-a", 2))

    assert await store.head("conv-a") == "fp-2"
    assert await store.get("fp-1") == a_turn("conv-a", 1)


async def test_heads_of_different_conversations_are_independent(make_store: StoreMaker) -> None:
    store = await make_store()

    await store.put("fp-a", a_turn("conv-a"))
    await store.put("fp-b", a_turn("conv-b"))

    assert await store.head("conv-a") == "fp-a"
    assert await store.head("conv-b") == "fp-b"
    assert await store.head("conv-unknown") is None


async def test_put_on_a_known_fingerprint_replaces_its_turn(make_store: StoreMaker) -> None:
    store = await make_store()

    await store.put("fp-1", a_turn("conv-a"))
    await store.put("fp-1", a_turn("conv-b"))

    assert await store.get("fp-1") == a_turn("conv-b")


async def test_chat_key_maps_to_its_conversation_and_can_be_rebound(
    make_store: StoreMaker,
) -> None:
    store = await make_store()
    assert await store.get_key("chat-1") is None

    await store.put_key("chat-1", "conv-a")
    assert await store.get_key("chat-1") == "conv-a"
    await store.put_key("chat-1", "conv-b")

    assert await store.get_key("chat-1") == "conv-b"


async def test_forgotten_conversation_loses_its_head_and_keys(make_store: StoreMaker) -> None:
    store = await make_store()
    await store.put("fp-a", a_turn("conv-a"))
    await store.put_key("chat-1", "conv-a")
    await store.put_key("chat-2", "conv-a")
    await store.put("fp-b", a_turn("conv-b"))
    await store.put_key("chat-3", "conv-b")

    await store.forget_conversation("conv-a")

    assert await store.head("conv-a") is None
    assert await store.get_key("chat-1") is None
    assert await store.get_key("chat-2") is None
    assert await store.head("conv-b") == "fp-b"
    assert await store.get_key("chat-3") == "conv-b"


async def test_forgetting_spares_a_key_rebound_to_another_conversation(
    make_store: StoreMaker,
) -> None:
    store = await make_store()
    await store.put_key("chat-1", "conv-a")
    await store.put_key("chat-1", "conv-b")

    await store.forget_conversation("conv-a")

    assert await store.get_key("chat-1") == "conv-b"


async def test_forgetting_an_unknown_conversation_is_harmless(make_store: StoreMaker) -> None:
    store = await make_store()

    await store.forget_conversation("conv-never-seen")

    assert await store.head("conv-never-seen") is None


async def test_entries_expire_after_the_ttl(make_store: StoreMaker) -> None:
    store = await make_store(ttl=1.0)
    await store.put("fp-1", a_turn("conv-a"))
    await store.put_key("chat-1", "conv-a")
    assert await store.get("fp-1") is not None

    async def all_expired() -> bool:
        return (
            await store.get("fp-1") is None
            and await store.head("conv-a") is None
            and await store.get_key("chat-1") is None
        )

    assert await eventually(all_expired)


# Redis is bounded by the TTL on every key and the server's maxmemory instead (see
# test_redis_store.py).
@pytest.mark.parametrize("make_store", ["memory", "sqlite"], indirect=True)
async def test_size_bound_drops_the_oldest_entries(make_store: StoreMaker) -> None:
    store = await make_store(max_entries=10)

    for index in range(40):
        await store.put(f"fp-{index}", a_turn(f"conv-{index}"))
        await store.put_key(f"chat-{index}", f"conv-{index}")

    kept = [index for index in range(40) if await store.get(f"fp-{index}") is not None]
    assert kept == list(range(30, 40))
    assert await store.head("conv-0") is None
    assert await store.get_key("chat-0") is None
    assert await store.head("conv-39") == "fp-39"
    assert await store.get_key("chat-39") == "conv-39"


async def test_concurrent_puts_and_gets_lose_no_writes(make_store: StoreMaker) -> None:
    store = await make_store()

    async def put_then_get(index: int) -> StoredTurn | None:
        await store.put(f"fp-{index}", a_turn(f"conv-{index % 20}", turn=index))
        return await store.get(f"fp-{index}")

    read_back = await asyncio.gather(*(put_then_get(index) for index in range(200)))

    assert read_back == [a_turn(f"conv-{index % 20}", turn=index) for index in range(200)]
    stored = await asyncio.gather(*(store.get(f"fp-{index}") for index in range(200)))
    assert None not in stored
    heads = await asyncio.gather(*(store.head(f"conv-{n}") for n in range(20)))
    assert all(head in {f"fp-{i}" for i in range(n, 200, 20)} for n, head in enumerate(heads))


async def test_closed_store_raises_store_unavailable(make_store: StoreMaker) -> None:
    store = await make_store()
    await store.close()

    calls: list[Callable[[ConversationStore], Awaitable[object]]] = [
        lambda s: s.get("fp"),
        lambda s: s.put("fp", a_turn("conv")),
        lambda s: s.head("conv"),
        lambda s: s.get_key("chat"),
        lambda s: s.put_key("chat", "conv"),
        lambda s: s.forget_conversation("conv"),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable):
            await call(store)


async def test_closing_twice_is_harmless(make_store: StoreMaker) -> None:
    store = await make_store()

    await store.close()
    await store.close()


async def test_store_satisfies_the_protocol(make_store: StoreMaker) -> None:
    store = await make_store()

    assert isinstance(store, ConversationStore)
