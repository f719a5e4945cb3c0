"""Dify forgot a conversation the store still maps: the turn still succeeds, as a new
conversation carrying the history.

Each test has an emulator of its own, restarted on the same URL to make it forget.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conversations_e2e.conftest import (
    Chat,
    Emulator,
    bridge_in_thread,
    client_for,
    previous_query,
)

CHECK_TIMEOUT = 0.5
CHAT_APP = {"id": "llm-chat", "app_key": "app-llmchat"}


@pytest.fixture
def forgetful_emulator() -> Iterator[Emulator]:
    # A long 13a hang: only the bridge's own deadline can end it within the test.
    emu = Emulator(idle_timeout=120.0)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def recovering_bridge(forgetful_emulator: Emulator) -> Iterator[str]:
    from tests.conversations_e2e.conftest import MODELS

    with bridge_in_thread(
        forgetful_emulator.api_url,
        models=[*MODELS, CHAT_APP],
        conversation_check_timeout=CHECK_TIMEOUT,
        first_event_timeout=60.0,
    ) as url:
        yield url


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_a_chatflow_conversation_dify_forgot_is_detected_at_once_and_restarted_with_the_history(
    forgetful_emulator, recovering_bridge, user, stream
):
    chat = Chat(client_for(recovering_bridge, timeout=20), user)
    first = chat.say("the sky is blue")
    chat.say("grass is green")
    forgetful_emulator.restart()

    # Streaming into the unknown id makes Dify ping once and hang (rec. 13a); the bridge gives
    # up on it after conversation_check_timeout instead of the long first_event_timeout.
    recovered = chat.say("what colours did I name?", stream=stream)

    lost, fresh = forgetful_emulator.journal(user)
    assert (lost["conversation_id"], lost["query"]) == (
        first.conversation_id,
        "what colours did I name?",
    )
    assert not fresh.get("conversation_id")
    for text in ("User: the sky is blue", "User: grass is green", "what colours did I name?"):
        assert text in fresh["query"]
    assert previous_query(recovered.answer) == ""
    assert recovered.conversation_id not in (None, first.conversation_id)

    after = chat.say("and now?")
    last = forgetful_emulator.journal(user)[-1]
    assert (last["conversation_id"], last["query"]) == (recovered.conversation_id, "and now?")
    assert after.conversation_id == recovered.conversation_id
    assert previous_query(after.answer) == fresh["query"]


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_a_chat_app_conversation_dify_answers_404_for_is_restarted_with_the_history(
    forgetful_emulator, recovering_bridge, user, stream
):
    chat = Chat(client_for(recovering_bridge, timeout=20), user, model="llm-chat")
    first = chat.say("remember the number 42")
    chat.say("and the word otter")
    forgetful_emulator.restart()

    recovered = chat.say("what did I ask you to remember?", stream=stream)

    lost, fresh = forgetful_emulator.journal(user)
    assert lost["conversation_id"] == first.conversation_id
    assert not fresh.get("conversation_id")
    for text in ("remember the number 42", "and the word otter", "what did I ask you to"):
        assert text in fresh["query"]
    assert recovered.conversation_id not in (None, first.conversation_id)

    chat.say("thanks")
    last = forgetful_emulator.journal(user)[-1]
    assert (last["conversation_id"], last["query"]) == (recovered.conversation_id, "thanks")


def test_a_keyed_chat_dify_forgot_starts_afresh_and_the_key_follows_the_new_conversation(
    forgetful_emulator, recovering_bridge, user
):
    client = client_for(recovering_bridge, timeout=20)
    headers = {"X-Conversation-Key": f"chat-{user}"}
    chat = Chat(client, user)
    first = chat.say("keyed one", extra_headers=headers)
    forgetful_emulator.restart()

    recovered = chat.say("keyed two", extra_headers=headers)
    only_last = Chat(client, user)
    continued = only_last.say("keyed three", extra_headers=headers)

    assert recovered.conversation_id not in (None, first.conversation_id)
    assert continued.conversation_id == recovered.conversation_id
    assert forgetful_emulator.journal(user)[-1]["conversation_id"] == recovered.conversation_id


def test_a_recovered_turn_keeps_a_system_prompt_that_goes_to_an_input_out_of_the_query(
    forgetful_emulator, user
):
    mapped = {"id": "echo-system-input", "app_key": "app-echochat", "system_input": "system_prompt"}
    with bridge_in_thread(
        forgetful_emulator.api_url, models=[mapped], conversation_check_timeout=CHECK_TIMEOUT
    ) as url:
        chat = Chat(client_for(url, timeout=20), user, model="echo-system-input")
        chat.messages.append({"role": "system", "content": "You are a careful echo."})
        first = chat.say("first")
        forgetful_emulator.restart()
        chat.say("second")

    lost, fresh = forgetful_emulator.journal(user)
    assert lost["conversation_id"] == first.conversation_id
    assert fresh["inputs"]["system_prompt"] == "You are a careful echo."
    assert "System: You are a careful echo." not in fresh["query"]
    assert "User: first" in fresh["query"] and fresh["query"].endswith("[New message]\nsecond")
