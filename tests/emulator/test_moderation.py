"""Keyword moderation (44a–44g): input blocks, output replacement, stored answers, /parameters."""

from __future__ import annotations

import time

import httpx

from tests.emulator.sse import events, names
from tests.emulator.test_behaviour import answer_of, auth, chat

MODCHAT, MODFLOW = "app-modchat", "app-modchatflow"
INPUT_PRESET = "[input blocked by keyword moderation]"
OUTPUT_PRESET = "[output blocked by keyword moderation]"


def _stored_answers(client: httpx.Client, key: str, conversation_id: str) -> list[str]:
    listed = client.get(
        "/v1/messages",
        params={"conversation_id": conversation_id, "user": "tester"},
        headers=auth(key),
    ).json()
    return [m["answer"] for m in listed["data"]]


def test_chat_app_streams_the_input_preset_one_character_per_event(client: httpx.Client) -> None:
    body = chat(client, MODCHAT, "make it go KaBoOm").text
    evs = events(body)
    assert names(body) == ["message"] * len(INPUT_PRESET) + ["message_end"]
    assert [e["answer"] for e in evs[:-1]] == list(INPUT_PRESET)
    assert all(e["from_variable_selector"] is None for e in evs[:-1])
    usage = evs[-1]["metadata"]["usage"]
    assert usage["total_tokens"] == 0 and usage["total_price"] == "0.0"
    assert evs[-1]["files"] is None
    assert _stored_answers(client, MODCHAT, evs[0]["conversation_id"]) == [INPUT_PRESET]


def test_only_declared_inputs_reach_the_input_check(client: httpx.Client) -> None:
    # Dify's _prepare_user_inputs keeps only the form's variables before moderation runs;
    # ModChat declares none, so an extra input can't trip the check (issue 14 item 9).
    passed = chat(
        client, MODCHAT, "harmless", inputs={"note": "big KABOOM"}, response_mode="blocking"
    )
    assert passed.json()["answer"] == "Echo: harmless"


def test_chat_app_output_is_replaced_before_message_end(client: httpx.Client) -> None:
    body = chat(client, MODCHAT, "boom goes the dynamite").text
    assert names(body)[-2:] == ["message_replace", "message_end"]
    assert answer_of(body) == "Echo: boom goes the dynamite"  # streamed unmoderated first
    replace = events(body)[-2]
    assert (replace["answer"], replace["reason"]) == (OUTPUT_PRESET, "")
    assert _stored_answers(client, MODCHAT, replace["conversation_id"]) == [OUTPUT_PRESET]
    blocking = chat(client, MODCHAT, "boom goes the dynamite", response_mode="blocking")
    assert blocking.json()["answer"] == OUTPUT_PRESET


def test_clean_answers_are_untouched(client: httpx.Client) -> None:
    body = chat(client, MODCHAT, "hello there").text
    assert "message_replace" not in names(body)
    assert answer_of(body) == "Echo: hello there"


def test_chatflow_input_block_sends_one_message_then_stays_open(client: httpx.Client) -> None:
    started = time.monotonic()
    body = chat(client, MODFLOW, "make it go kaboom").text
    # one ping, no workflow events, and no pings while it is held open (idle_timeout 0.6 s)
    assert names(body) == ["ping", "message", "message_end"]
    assert time.monotonic() - started >= 0.5
    message = events(body)[0]
    assert (message["answer"], message["from_variable_selector"]) == (INPUT_PRESET, None)
    assert events(body)[1]["files"] == []


def test_chatflow_input_block_in_blocking_mode_answers_at_once(client: httpx.Client) -> None:
    # 44g: no hold-open here; the answer comes with the response.
    response = chat(client, MODFLOW, "make it go kaboom", response_mode="blocking")
    assert response.json()["answer"] == INPUT_PRESET
    assert response.json()["mode"] == "advanced-chat"


def test_chatflow_output_replace_keeps_workflow_outputs(client: httpx.Client) -> None:
    body = chat(client, MODFLOW, "boom goes the dynamite").text
    assert names(body)[-3:] == ["message_replace", "message_end", "workflow_finished"]
    evs = events(body)
    assert evs[-3]["reason"] == "output_moderation"
    assert evs[-1]["data"]["outputs"]["answer"] == "Echo: boom goes the dynamite"
    start = next(e for e in evs if e["event"] == "node_finished")["data"]
    assert start["inputs"]["query__"] == "boom goes the dynamite"  # 44d
    assert _stored_answers(client, MODFLOW, evs[0]["conversation_id"]) == [OUTPUT_PRESET]


def test_parameters_show_the_moderation_settings(client: httpx.Client) -> None:
    for key in (MODCHAT, MODFLOW):
        shown = client.get("/v1/parameters", headers=auth(key)).json()["sensitive_word_avoidance"]
        assert shown["enabled"] is True
        assert shown["type"] == "keywords"
        assert shown["config"]["inputs_config"]["preset_response"] == INPUT_PRESET
    plain = client.get("/v1/parameters", headers=auth("app-llmchat")).json()
    assert plain["sensitive_word_avoidance"] == {"enabled": False}
