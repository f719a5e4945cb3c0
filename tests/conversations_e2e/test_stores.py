"""Persistent and shared stores with the bridge running as real processes."""

from __future__ import annotations

import json
import signal

import pytest

from tests.conversations_e2e.conftest import Chat, client_for, previous_query
from tests.support.redis_server import RedisServerUnavailable, start_redis_server


@pytest.fixture
def redis_server():
    try:
        server = start_redis_server()
    except RedisServerUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


def test_a_sqlite_store_keeps_the_conversation_across_a_bridge_restart(
    bridge_processes, emulator, user, tmp_path
):
    store = f"sqlite:///{tmp_path / 'conversations.db'}"
    first_bridge = bridge_processes(store, name="first")
    chat = Chat(client_for(first_bridge.url, timeout=30), user)
    first = chat.say("one")
    chat.say("two", stream=True)
    first_bridge.stop()
    # uvicorn re-raises SIGTERM after its graceful shutdown.
    assert first_bridge.process.returncode in (0, -signal.SIGTERM)

    second_bridge = bridge_processes(store, name="second")
    chat.client = client_for(second_bridge.url, timeout=30)
    third = chat.say("three")

    sent = emulator.journal(user)
    assert [body["query"] for body in sent] == ["one", "two", "three"]
    assert [body["conversation_id"] for body in sent[1:]] == [first.conversation_id] * 2
    assert third.conversation_id == first.conversation_id
    assert previous_query(third.answer) == "two"


def test_two_bridges_sharing_redis_continue_one_conversation_turn_by_turn(
    bridge_processes, emulator, user, redis_server
):
    bridges = [bridge_processes(redis_server.url, name=f"replica{n}") for n in (1, 2)]
    clients = [client_for(bridge.url, timeout=30) for bridge in bridges]
    chat = Chat(clients[0], user)
    replies = []
    for turn in range(6):
        chat.client = clients[turn % 2]
        replies.append(chat.say(f"turn {turn}", stream=turn % 3 == 0))

    sent = emulator.journal(user)
    conversation_id = replies[0].conversation_id
    assert [body["query"] for body in sent] == [f"turn {turn}" for turn in range(6)]
    assert [body["conversation_id"] for body in sent[1:]] == [conversation_id] * 5
    assert {reply.conversation_id for reply in replies} == {conversation_id}
    assert previous_query(replies[-1].answer) == "turn 4"


def test_when_redis_dies_requests_still_succeed_carrying_the_history_and_a_warning_is_logged(
    bridge_processes, emulator, user, redis_server
):
    bridge = bridge_processes(redis_server.url, name="redis-outage")
    chat = Chat(client_for(bridge.url, timeout=30), user)
    first = chat.say("before the outage")
    chat.say("still fine")

    redis_server.stop()
    during = chat.say("redis is gone")  # the openai client raises on anything but 2xx
    after = chat.say("still gone", stream=True)

    sent = emulator.journal(user)
    assert sent[1]["conversation_id"] == first.conversation_id
    for body, said in zip(sent[2:], ["redis is gone", "still gone"], strict=True):
        assert not body.get("conversation_id")
        assert body["query"].startswith("[Conversation so far]")
        assert "User: before the outage" in body["query"] and "User: still fine" in body["query"]
        assert body["query"].endswith(f"[New message]\n{said}")
    assert during.conversation_id and after.conversation_id
    assert "redis is gone" in during.answer and "still gone" in after.answer

    warnings = [
        record
        for record in map(json.loads, filter(_is_json, bridge.log().splitlines()))
        if record.get("level") == "warning"
        and "conversation store unavailable" in record.get("event", "")
    ]
    assert warnings, bridge.log()[-3000:]


def _is_json(line: str) -> bool:
    return line.startswith("{")
