"""Compare-and-set of conversation heads (issue 13): of requests continuing the same state at
the same instant, exactly one continues the Dify conversation and the others fork.

Run against every store; the races use several store objects on the same backing data
(SQLite: one connection and thread each; Redis: one connection pool each) and, for the
stores shared between processes, several processes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from bridge.conversations import (
    Lookup,
    StoredTurn,
    claim_turn,
    look_up_turn,
    normalise_messages,
    open_store,
    plan_turn,
    record_turn,
)
from tests.conversations.conftest import StoreMaker

# Kept small: a burst of hundreds of calls would trip the stores' short Redis timeouts on a
# loaded CI machine, which is not what these tests are about.
CONTENDERS = 4
RACED_CONVERSATIONS = 20


def a_turn(conversation_id: str, turn: int = 1) -> StoredTurn:
    return StoredTurn(conversation_id=conversation_id, turn=turn, created_at=1_700_000_000.0)


async def test_swap_head_only_replaces_the_expected_head(make_store: StoreMaker) -> None:
    store = await make_store()
    await store.put("fp-1", a_turn("conv-a"))

    assert not await store.swap_head("conv-a", "fp-other", "claim-x")
    assert await store.head("conv-a") == "fp-1"
    assert await store.swap_head("conv-a", "fp-1", "claim-x")
    assert await store.head("conv-a") == "claim-x"
    assert not await store.swap_head("conv-a", "fp-1", "claim-y")


async def test_swap_head_of_an_unknown_conversation_fails(make_store: StoreMaker) -> None:
    store = await make_store()

    assert not await store.swap_head("conv-unknown", "fp-1", "claim-x")
    assert await store.head("conv-unknown") is None


async def test_put_replacing_moves_the_head_only_while_the_claim_holds_it(
    make_store: StoreMaker,
) -> None:
    store = await make_store()
    await store.put("fp-1", a_turn("conv-a", 1))
    assert await store.swap_head("conv-a", "fp-1", "claim-x")

    assert not await store.put("fp-2", a_turn("conv-a", 2), replacing="claim-other")
    assert await store.head("conv-a") == "claim-x"
    # The turn is stored either way: a later lookup of that history finds it (and forks).
    assert await store.get("fp-2") == a_turn("conv-a", 2)

    assert await store.put("fp-3", a_turn("conv-a", 2), replacing="claim-x")
    assert await store.head("conv-a") == "fp-3"


async def test_put_replacing_does_not_bring_back_a_forgotten_conversation(
    make_store: StoreMaker,
) -> None:
    store = await make_store()
    await store.put("fp-1", a_turn("conv-a", 1))
    assert await store.swap_head("conv-a", "fp-1", "claim-x")
    await store.forget_conversation("conv-a")

    assert not await store.put("fp-2", a_turn("conv-a", 2), replacing="claim-x")
    assert await store.head("conv-a") is None


async def test_plain_put_still_sets_the_head_unconditionally(make_store: StoreMaker) -> None:
    store = await make_store()
    await store.put("fp-1", a_turn("conv-a", 1))

    assert await store.put("fp-2", a_turn("conv-a", 2))
    assert await store.head("conv-a") == "fp-2"


async def test_simultaneous_claims_on_shared_stores_have_exactly_one_winner(
    make_store: StoreMaker,
) -> None:
    # Several store objects on the same data stand for several replicas (the memory store
    # is one object: its atomicity is per event loop).
    stores = [await make_store() for _ in range(1 if make_store.kind == "memory" else 4)]
    for n in range(RACED_CONVERSATIONS):
        await stores[0].put(f"fp-{n}", a_turn(f"conv-{n}"))

    async def contend(contender: int, n: int) -> bool:
        store = stores[contender % len(stores)]
        return await store.swap_head(f"conv-{n}", f"fp-{n}", f"claim-{contender}")

    results = await asyncio.gather(
        *(contend(c, n) for n in range(RACED_CONVERSATIONS) for c in range(CONTENDERS))
    )

    for n in range(RACED_CONVERSATIONS):
        won = results[n * CONTENDERS : (n + 1) * CONTENDERS]
        assert won.count(True) == 1, (n, won)
        head = await stores[0].head(f"conv-{n}")
        assert head == f"claim-{won.index(True)}"


def _claim_in_process(url: str, contender: int, conversations: int) -> list[int]:
    """Runs in a process of its own: try to claim every conversation, return those won."""

    async def run() -> list[int]:
        store = await open_store(url, ttl=60.0, max_entries=10_000)
        try:
            return [
                n
                for n in range(conversations)
                if await store.swap_head(f"conv-{n}", f"fp-{n}", f"claim-p{contender}")
            ]
        finally:
            await store.close()

    return asyncio.run(run())


@pytest.mark.skipif(sys.platform == "win32", reason="forkserver start method")
async def test_claims_from_several_processes_have_exactly_one_winner(
    make_store: StoreMaker,
) -> None:
    if make_store.kind == "memory":
        pytest.skip("the memory store is not shared between processes")
    store = await make_store()
    for n in range(RACED_CONVERSATIONS):
        await store.put(f"fp-{n}", a_turn(f"conv-{n}"))

    context = multiprocessing.get_context("spawn")
    processes = 3
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        loop = asyncio.get_running_loop()
        won = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool, _claim_in_process, make_store.url, p, RACED_CONVERSATIONS
                )
                for p in range(processes)
            )
        )

    winners = sorted(n for per_process in won for n in per_process)
    assert winners == list(range(RACED_CONVERSATIONS))


async def test_two_requests_continuing_one_state_one_continues_and_the_other_forks(
    make_store: StoreMaker,
) -> None:
    replicas = [await make_store() for _ in range(1 if make_store.kind == "memory" else 2)]
    app_id, user = "app-1", "user-1"
    history = normalise_messages(
        [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    )
    await record_turn(
        replicas[0],
        app_id=app_id,
        user=user,
        messages=history[:1],
        answer="hi",
        conversation_id="conv-a",
    )
    messages = normalise_messages(
        [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "next"},
        ]
    )

    async def plan_on(store_index: int) -> tuple[str, str | None, str | None]:
        store = replicas[store_index % len(replicas)]
        lookup = await look_up_turn(store, app_id=app_id, user=user, messages=messages)
        claim = None
        # Whichever looks up after the other's claim already sees a fork; the others race.
        if plan_turn(messages, lookup=lookup).reason == "hit":
            lookup, claim = await claim_turn(store, lookup)
        plan = plan_turn(messages, lookup=lookup)
        return plan.reason, plan.conversation_id, claim

    outcomes = await asyncio.gather(plan_on(0), plan_on(1))

    reasons = sorted(reason for reason, _, _ in outcomes)
    assert reasons == ["fork", "hit"]
    winner = next(o for o in outcomes if o[0] == "hit")
    loser = next(o for o in outcomes if o[0] == "fork")
    assert winner[1] == "conv-a" and winner[2] is not None
    assert loser[1] is None and loser[2] is None

    # The winner's finished turn replaces its claim: the conversation goes on from there.
    await record_turn(
        replicas[0],
        app_id=app_id,
        user=user,
        messages=messages,
        answer="went on",
        conversation_id="conv-a",
        claim=winner[2],
    )
    after = normalise_messages(
        [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "next"},
            {"role": "assistant", "content": "went on"},
            {"role": "user", "content": "and again"},
        ]
    )
    lookup = await look_up_turn(replicas[-1], app_id=app_id, user=user, messages=after)
    assert plan_turn(after, lookup=lookup).reason == "hit"


async def test_a_claim_lost_to_a_store_failure_carries_the_history(
    make_store: StoreMaker,
) -> None:
    store = await make_store()
    await store.put("fp-1", a_turn("conv-a"))
    await store.close()

    lookup, claim = await claim_turn(
        store, Lookup(fingerprint="fp-1", conversation_id="conv-a", head="fp-1")
    )

    assert claim is None and lookup.store_down
