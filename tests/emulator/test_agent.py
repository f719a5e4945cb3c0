"""agent-chat with the builtin time tool (31e/31f) and agents without an emulated tool."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx

from tests.emulator.sse import events, names
from tests.emulator.test_behaviour import auth, chat

TOOL_AGENT, PLAIN_AGENT, FILE_AGENT = "app-llmagenttool", "app-llmagent", "app-llmagentfiletool"


def _agent_answer(body: str) -> str:
    return "".join(e["answer"] for e in events(body) if e["event"] == "agent_message")


def test_usetool_runs_current_time_then_answers_with_its_result(client: httpx.Client) -> None:
    body = chat(client, TOOL_AGENT, "USETOOL what time is it").text
    seq = names(body)
    assert seq[:5] == [
        "agent_thought",
        "agent_message",
        "agent_thought",
        "agent_thought",
        "agent_thought",
    ]
    assert seq[-2:] == ["agent_thought", "message_end"]
    thoughts = [e for e in events(body) if e["event"] == "agent_thought"]
    assert [t["position"] for t in thoughts] == [1, 1, 1, 2, 2]
    assert len({t["id"] for t in thoughts[:3]}) == 1 and thoughts[3]["id"] != thoughts[0]["id"]
    call, observed = thoughts[1], thoughts[2]
    assert call["tool"] == "current_time"
    assert call["tool_input"] == '{"current_time": {}}'
    assert call["tool_labels"]["current_time"]["en_US"] == "Current Time"
    assert call["observation"] == ""
    now_text = json.loads(observed["observation"])["current_time"]
    # The DSL asks for '%Y-%m-%d %H:%M:%S' in UTC.
    stamp = datetime.strptime(now_text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=5)
    answer = _agent_answer(body)
    assert answer == f"Echo: tool said: {now_text}"
    assert thoughts[-1]["thought"] == answer

    conversation_id = events(body)[0]["conversation_id"]
    listed = client.get(
        "/v1/messages",
        params={"conversation_id": conversation_id, "user": "tester"},
        headers=auth(TOOL_AGENT),
    ).json()["data"]
    stored = listed[0]["agent_thoughts"]
    assert [(t["position"], t["tool"], t["thought"]) for t in stored] == [
        (1, "current_time", ""),
        (2, "", answer),
    ]
    assert listed[0]["answer"] == answer


def test_usetool_without_tools_is_a_plain_answer(client: httpx.Client) -> None:
    body = chat(client, PLAIN_AGENT, "USETOOL please").text
    thoughts = [e for e in events(body) if e["event"] == "agent_thought"]
    assert [t["tool"] for t in thoughts] == ["", ""]
    assert _agent_answer(body) == "Echo: USETOOL please"


def test_an_unmapped_workflow_tool_is_not_called(client: httpx.Client) -> None:
    # Which workflow a workflow tool runs is not in the DSL; without an EmulatorConfig
    # `workflow_tools` entry the agent answers plainly (46d with the mapping: test_file_outputs).
    body = chat(client, FILE_AGENT, "USETOOL fetch it").text
    assert "message_file" not in names(body)
    assert _agent_answer(body) == "Echo: USETOOL fetch it"
