"""Every rule of plan_turn."""

from __future__ import annotations

import pytest

from bridge.conversations import Lookup, NormalisedMessage, TurnPlan, plan_turn, render_history

CONVERSATION = "4f4f71a6-b29a-41d1-99f6-c4ff3790d024"  # from recordings 01/02

FIRST_TURN: list[NormalisedMessage] = [("user", "Hello cat")]
SECOND_TURN: list[NormalisedMessage] = [
    ("system", "You are a cat."),
    ("user", "Hello cat"),
    ("assistant", "喵"),
    ("user", "Second turn"),
]


def at_head(conversation_id: str = CONVERSATION) -> Lookup:
    return Lookup(fingerprint="fp-prior", conversation_id=conversation_id, head="fp-prior")


def test_first_user_message_starts_a_new_conversation_with_just_that_message() -> None:
    plan = plan_turn(FIRST_TURN)

    assert plan == TurnPlan(
        query="Hello cat",
        conversation_id=None,
        reason="new",
        carried_history=False,
        remember=True,
    )


def test_first_message_after_a_system_prompt_carries_the_prompt() -> None:
    plan = plan_turn([("system", "You are a cat."), ("user", "Hello cat")])

    assert plan.reason == "new"
    assert plan.conversation_id is None
    assert plan.query == render_history([("system", "You are a cat."), ("user", "Hello cat")])
    assert plan.carried_history


def test_system_prompt_stays_out_of_the_query_when_the_caller_maps_it_to_inputs() -> None:
    plan = plan_turn([("system", "You are a cat."), ("user", "Hello cat")], system_in_query=False)

    assert plan.query == "Hello cat"
    assert not plan.carried_history


def test_known_history_at_the_head_continues_with_only_the_last_user_message() -> None:
    plan = plan_turn(SECOND_TURN, lookup=at_head())

    assert plan == TurnPlan(
        query="Second turn",
        conversation_id=CONVERSATION,
        reason="hit",
        carried_history=False,
        remember=True,
    )


def test_regenerate_after_the_conversation_moved_on_forks_with_the_history() -> None:
    moved_on = Lookup(fingerprint="fp-prior", conversation_id=CONVERSATION, head="fp-later")

    plan = plan_turn(SECOND_TURN, lookup=moved_on)

    assert plan.reason == "fork"
    assert plan.conversation_id is None
    assert plan.query == render_history(SECOND_TURN)
    assert plan.carried_history


def test_unknown_history_starts_a_new_conversation_carrying_it() -> None:
    plan = plan_turn(SECOND_TURN, lookup=Lookup(fingerprint="fp-prior"))

    assert plan.reason == "miss"
    assert plan.conversation_id is None
    assert plan.query == render_history(SECOND_TURN)
    assert plan.carried_history
    assert plan.remember


def test_no_lookup_at_all_counts_as_a_miss() -> None:
    assert plan_turn(SECOND_TURN).reason == "miss"


def test_forgotten_conversation_is_not_continued() -> None:
    forgotten = Lookup(fingerprint="fp-prior", conversation_id=CONVERSATION, head=None)

    plan = plan_turn(SECOND_TURN, lookup=forgotten)

    assert plan.reason == "miss"
    assert plan.conversation_id is None


def test_store_down_carries_the_history_instead_of_failing() -> None:
    plan = plan_turn(SECOND_TURN, lookup=Lookup(fingerprint="fp-prior", store_down=True))

    assert plan.reason == "store_down"
    assert plan.conversation_id is None
    assert plan.query == render_history(SECOND_TURN)


def test_pinned_conversation_continues_with_only_the_last_user_message() -> None:
    plan = plan_turn(
        SECOND_TURN, lookup=Lookup(fingerprint="fp-prior"), pinned_conversation_id="c-9"
    )

    assert plan == TurnPlan(
        query="Second turn",
        conversation_id="c-9",
        reason="pinned",
        carried_history=False,
        remember=True,
    )


def test_pin_beats_a_stored_conversation() -> None:
    plan = plan_turn(SECOND_TURN, lookup=at_head(), pinned_conversation_id="c-9")

    assert plan.conversation_id == "c-9"


def test_pinned_conversation_with_a_trailing_prefill_gets_it_in_the_query() -> None:
    messages = [*SECOND_TURN, ("assistant", "Purr")]

    plan = plan_turn(messages, pinned_conversation_id="c-9")

    assert plan.conversation_id == "c-9"
    assert plan.query == render_history([("user", "Second turn"), ("assistant", "Purr")])


def test_flatten_always_starts_a_new_conversation_with_the_history() -> None:
    plan = plan_turn(SECOND_TURN, history="flatten", lookup=at_head(), pinned_conversation_id="c-9")

    assert plan == TurnPlan(
        query=render_history(SECOND_TURN),
        conversation_id=None,
        reason="flatten",
        carried_history=True,
        remember=False,
    )


def test_flatten_of_a_lone_message_is_that_message() -> None:
    plan = plan_turn(FIRST_TURN, history="flatten")

    assert plan.query == "Hello cat"
    assert not plan.carried_history


def test_last_sends_only_the_last_user_message_without_a_conversation() -> None:
    plan = plan_turn(SECOND_TURN, history="last", lookup=at_head(), pinned_conversation_id="c-9")

    assert plan == TurnPlan(
        query="Second turn",
        conversation_id=None,
        reason="last",
        carried_history=False,
        remember=False,
    )


def test_last_skips_trailing_non_user_messages() -> None:
    plan = plan_turn([*SECOND_TURN, ("assistant", "Purr")], history="last")

    assert plan.query == "Second turn"


def test_last_without_any_user_message_carries_what_there_is() -> None:
    plan = plan_turn([("system", "Summarise."), ("assistant", "Earlier answer")], history="last")

    assert plan.query == render_history([("system", "Summarise."), ("assistant", "Earlier answer")])
    assert plan.carried_history


@pytest.mark.parametrize(
    "trailing",
    [("assistant", "Purr"), ("tool", '{"weather": "sunny"}')],
    ids=["assistant-prefill", "tool-result"],
)
def test_non_user_last_message_starts_a_new_conversation_carrying_everything(
    trailing: NormalisedMessage,
) -> None:
    messages = [*SECOND_TURN, trailing]

    plan = plan_turn(messages, lookup=at_head())

    assert plan.reason == "trailing"
    assert plan.conversation_id is None
    assert plan.query == render_history(messages)
    assert plan.query.endswith(f"{trailing[0].capitalize()}: {trailing[1]}")
    assert plan.remember


def test_carried_history_never_drops_a_user_message() -> None:
    messages: list[NormalisedMessage] = [
        ("user", "one"),
        ("assistant", "喵"),
        ("user", "two"),
        ("user", "three"),
        ("assistant", ""),
        ("user", "four"),
    ]

    plan = plan_turn(messages, lookup=Lookup(fingerprint="fp-prior"))

    for _, text in filter(lambda message: message[0] == "user", messages):
        assert text in plan.query


def test_only_system_messages_are_still_sent() -> None:
    plan = plan_turn([("system", "Say hi.")], system_in_query=False)

    assert plan.reason == "trailing"
    assert plan.query == render_history([("system", "Say hi.")])


def test_no_messages_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one message"):
        plan_turn([])
