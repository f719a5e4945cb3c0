"""A request's round trips to the store — look_up_turn, plan_turn, record_turn — over whole
conversations, driven by the recorded Cat_LLM exchange (recordings 01 and 02)."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.conversations import (
    ConversationStore,
    TurnPlan,
    chat_key,
    look_up_turn,
    normalise_messages,
    open_store,
    plan_turn,
    record_turn,
)
from tests.conversations.conftest import StoreMaker
from tests.support.recordings import load

APP = "app-cat"
FIRST = load("01")
SECOND = load("02")
USER = FIRST.request_json["user"]
CONVERSATION = FIRST.sse_events[0]["conversation_id"]
ANSWER = "".join(event["answer"] for event in FIRST.sse_events if event["event"] == "message")


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


TURN_ONE = [user(FIRST.request_json["query"])]
TURN_TWO = [*TURN_ONE, assistant(ANSWER), user(SECOND.request_json["query"])]


async def plan(
    store: ConversationStore,
    messages: list[dict[str, Any]],
    *,
    as_user: str = USER,
    client_chat: str | None = None,
) -> TurnPlan:
    normalised = normalise_messages(messages)
    key = chat_key(APP, as_user, client_chat) if client_chat else None
    lookup = await look_up_turn(store, app_id=APP, user=as_user, messages=normalised, chat_key=key)
    return plan_turn(normalised, lookup=lookup)


async def finish(
    store: ConversationStore,
    messages: list[dict[str, Any]],
    answer: str,
    conversation_id: str,
    *,
    client_chat: str | None = None,
) -> bool:
    return await record_turn(
        store,
        app_id=APP,
        user=USER,
        messages=normalise_messages(messages),
        answer=answer,
        conversation_id=conversation_id,
        chat_key=chat_key(APP, USER, client_chat) if client_chat else None,
    )


async def test_second_turn_continues_the_recorded_conversation_in_every_store(
    make_store: StoreMaker,
) -> None:
    store = await make_store()
    first_plan = await plan(store, TURN_ONE)
    assert (first_plan.reason, first_plan.query) == ("new", "Hello cat")
    assert await finish(store, TURN_ONE, ANSWER, CONVERSATION)

    second_plan = await plan(store, TURN_TWO)

    assert second_plan.reason == "hit"
    assert second_plan.conversation_id == SECOND.request_json["conversation_id"]
    assert second_plan.query == SECOND.request_json["query"]


# A memory store is private to its process by design.
@pytest.mark.parametrize("make_store", ["sqlite", "redis"], indirect=True)
async def test_another_replica_on_a_shared_store_continues_the_conversation(
    make_store: StoreMaker,
) -> None:
    replica_a, replica_b = await make_store(), await make_store()
    await finish(replica_a, TURN_ONE, ANSWER, CONVERSATION)

    assert (await plan(replica_b, TURN_TWO)).conversation_id == CONVERSATION


async def test_client_echoing_reasoning_and_whitespace_still_continues() -> None:
    store = await open_store("memory://", ttl=60, max_entries=100)
    await finish(store, TURN_ONE, f"<think>A greeting.</think>{ANSWER}", CONVERSATION)
    echoed = [user(" Hello cat\r\n"), assistant(f"\n{ANSWER}  "), user("Second turn")]

    assert (await plan(store, echoed)).reason == "hit"


async def test_regenerating_an_answer_forks_a_new_conversation() -> None:
    store = await open_store("memory://", ttl=60, max_entries=100)
    await finish(store, TURN_ONE, ANSWER, CONVERSATION)
    await finish(store, TURN_TWO, ANSWER, CONVERSATION)

    regenerate = await plan(store, TURN_TWO)

    assert regenerate.reason == "fork"
    assert regenerate.conversation_id is None
    assert "User: Hello cat" in regenerate.query
    assert regenerate.query.endswith("Second turn")


async def test_both_branches_continue_their_own_conversation_after_a_fork() -> None:
    store = await open_store("memory://", ttl=60, max_entries=100)
    await finish(store, TURN_ONE, ANSWER, CONVERSATION)
    await finish(store, TURN_TWO, "喵 (first answer)", CONVERSATION)
    await finish(store, TURN_TWO, "喵 (regenerated)", "conv-fork")

    original = [*TURN_TWO, assistant("喵 (first answer)"), user("Third")]
    forked = [*TURN_TWO, assistant("喵 (regenerated)"), user("Third")]

    assert (await plan(store, original)).conversation_id == CONVERSATION
    assert (await plan(store, forked)).conversation_id == "conv-fork"


async def test_editing_an_earlier_message_starts_over_with_the_history() -> None:
    store = await open_store("memory://", ttl=60, max_entries=100)
    await finish(store, TURN_ONE, ANSWER, CONVERSATION)
    edited = [user("Hello dog"), assistant(ANSWER), user("Second turn")]

    edited_plan = await plan(store, edited)

    assert edited_plan.reason == "miss"
    assert "User: Hello dog" in edited_plan.query


async def test_another_user_with_the_same_history_does_not_share_the_conversation() -> None:
    store = await open_store("memory://", ttl=60, max_entries=100)
    await finish(store, TURN_ONE, ANSWER, CONVERSATION)

    assert (await plan(store, TURN_TWO, as_user="someone-else")).reason == "miss"


async def test_forgotten_conversation_is_not_continued() -> None:
    store = await open_store("memory://", ttl=60, max_entries=100)
    await finish(store, TURN_ONE, ANSWER, CONVERSATION)

    await store.forget_conversation(CONVERSATION)

    assert (await plan(store, TURN_TWO)).reason == "miss"


async def test_chat_key_continues_its_conversation() -> None:
    store = await open_store("memory://", ttl=60, max_entries=100)
    await finish(store, TURN_ONE, ANSWER, CONVERSATION, client_chat="webui-chat-1")

    keyed = await plan(store, TURN_TWO, client_chat="webui-chat-1")

    assert (keyed.reason, keyed.conversation_id) == ("hit", CONVERSATION)


async def test_chat_key_of_a_conversation_that_moved_on_forks() -> None:
    store = await open_store("memory://", ttl=60, max_entries=100)
    await finish(store, TURN_ONE, ANSWER, CONVERSATION, client_chat="webui-chat-1")
    await finish(store, TURN_TWO, ANSWER, CONVERSATION, client_chat="webui-chat-1")
    edited = [user("Hello dog"), assistant(ANSWER), user("Second turn")]

    assert (await plan(store, edited, client_chat="webui-chat-1")).reason == "fork"


async def test_chat_key_elsewhere_does_not_hide_a_stored_branch() -> None:
    store = await open_store("memory://", ttl=60, max_entries=100)
    await finish(store, TURN_ONE, ANSWER, CONVERSATION)
    await finish(store, TURN_TWO, ANSWER, "conv-later", client_chat="webui-chat-1")

    keyed = await plan(store, TURN_TWO, client_chat="webui-chat-1")

    assert (keyed.reason, keyed.conversation_id) == ("hit", CONVERSATION)


async def test_store_down_degrades_to_carrying_the_history() -> None:
    store = await open_store("memory://", ttl=60, max_entries=100)
    await finish(store, TURN_ONE, ANSWER, CONVERSATION)
    await store.close()

    down = await plan(store, TURN_TWO, client_chat="webui-chat-1")

    assert down.reason == "store_down"
    assert down.query.endswith("Second turn")
    assert await finish(store, TURN_TWO, ANSWER, CONVERSATION) is False


async def test_first_turn_does_not_touch_the_store() -> None:
    store = await open_store("memory://", ttl=60, max_entries=100)
    await store.close()  # any store call would now report the store down

    assert (await plan(store, TURN_ONE)).reason == "new"
