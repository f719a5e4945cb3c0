"""Values, not just layouts, the recordings fix (issue 14 items 4, 5, 9): LLM node prompts and
usage, `<think>` separation, prompt token counts over a conversation, a stopped stream's usage,
and a completion app's top-level `query`."""

from __future__ import annotations

import httpx
import pytest

from tests.emulator.sse import events
from tests.emulator.test_behaviour import _stop_after_first_event
from tests.emulator.test_conformance import replay
from tests.support.recordings import load

LLMCHAT, LLMFLOW, THINK, COMPLETION = (
    "app-llmchat",
    "app-llmchatflow",
    "app-thinkchatflow",
    "app-llmcompletion",
)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _llm_node(body: str) -> dict:
    return next(
        e["data"]
        for e in events(body)
        if e["event"] == "node_finished" and e["data"]["node_type"] == "llm"
    )


def _recorded_llm_node(rec_id: str) -> dict:
    return next(
        e["data"]
        for e in load(rec_id).sse_events
        if e["event"] == "node_finished" and e["data"]["node_type"] == "llm"
    )


def test_47b_separated_reasoning_is_moved_out_of_the_node_text(client: httpx.Client) -> None:
    body = replay(client, load("47b"), THINK).text
    got, want = _llm_node(body), _recorded_llm_node("47b")
    assert got["outputs"]["text"] == want["outputs"]["text"] == "Echo:  Hello there"
    assert got["outputs"]["reasoning_content"] == want["outputs"]["reasoning_content"]
    # the stream still carries the tags; the run's outputs are built from the clean variables
    streamed = "".join(e["answer"] for e in events(body) if e["event"] == "message")
    recorded = "".join(e["answer"] for e in load("47b").sse_events if e["event"] == "message")
    assert streamed == recorded
    assert events(body)[-1]["data"]["outputs"] == load("47b").sse_events[-1]["data"]["outputs"]


def test_47c_blocking_answer_keeps_the_tags(client: httpx.Client) -> None:
    response = replay(client, load("47c"), THINK)
    assert response.json()["answer"] == load("47c").json["answer"]


def test_47d_default_format_keeps_the_tags_in_text(client: httpx.Client) -> None:
    got, want = _llm_node(replay(client, load("47d"), LLMFLOW).text), _recorded_llm_node("47d")
    assert got["outputs"]["text"] == want["outputs"]["text"]
    assert got["outputs"]["reasoning_content"] == want["outputs"]["reasoning_content"] == ""


def test_33a_llm_node_prompts_usage_and_timings(client: httpx.Client) -> None:
    body = replay(client, load("33a"), LLMFLOW).text
    got, want = _llm_node(body), _recorded_llm_node("33a")
    assert got["process_data"]["prompts"] == want["process_data"]["prompts"]
    for key in ("prompt_tokens", "completion_tokens", "total_tokens", "total_price"):
        assert got["outputs"]["usage"][key] == want["outputs"]["usage"][key], key
    usage_end = events(body)[-2]["metadata"]["usage"]
    for usage in (got["outputs"]["usage"], usage_end):
        assert usage["time_to_first_token"] is not None
        assert usage["time_to_generate"] is not None


def test_memory_window_reaches_the_llm_node_prompts(client: httpx.Client) -> None:
    first = replay(client, load("33a"), LLMFLOW).text
    conversation_id = events(first)[-1]["conversation_id"]
    second = client.post(
        "/v1/chat-messages",
        json={
            "inputs": {},
            "query": "and again",
            "response_mode": "streaming",
            "conversation_id": conversation_id,
            "user": load("33a").request_json["user"],
        },
        headers=_auth(LLMFLOW),
    ).text
    prompts = _llm_node(second)["process_data"]["prompts"]
    assert [(p["role"], p["text"]) for p in prompts] == [
        ("system", "You are an echo bot."),
        ("user", "and again"),
        ("user", "hello chatflow llm"),
        ("assistant", "Echo: hello chatflow llm"),
        ("user", "and again"),
    ]


def test_45abc_prompt_tokens_count_system_prompt_and_history(client: httpx.Client) -> None:
    """Recorded: 10, 15, 21 prompt tokens on turns 1-3 of one LLMChat conversation."""
    user = "tokens-user"
    conversation_id = ""
    counts = []
    for rec_id in ("45a", "45b", "45c"):
        request = dict(load(rec_id).request_json, user=user, conversation_id=conversation_id)
        body = client.post("/v1/chat-messages", json=request, headers=_auth(LLMCHAT)).text
        end = events(body)[-1]
        conversation_id = end["conversation_id"]
        counts.append(end["metadata"]["usage"]["prompt_tokens"])
    recorded = [
        load(r).sse_events[-1]["metadata"]["usage"]["prompt_tokens"] for r in ("45a", "45b", "45c")
    ]
    assert counts == recorded == [10, 15, 21]


def test_35a_stopped_chat_stream_reports_zero_usage(client: httpx.Client) -> None:
    text, _ = _stop_after_first_event(
        client, LLMCHAT, "/v1/chat-messages", load("35a").request_json, "/v1/chat-messages/{}/stop"
    )
    usage = events(text)[-1]["metadata"]["usage"]
    want = load("35a").sse_events[-1]["metadata"]["usage"]
    assert {k: v for k, v in usage.items() if k != "latency"} == {
        k: v for k, v in want.items() if k != "latency"
    }


def test_completion_app_uses_a_top_level_query_as_the_user_message(client: httpx.Client) -> None:
    """Measured on Dify 1.13.2 (issue 14 item 4): inputs.query=AAA, query=BBB → `Echo: BBB`."""
    response = client.post(
        "/v1/completion-messages",
        json={
            "inputs": {"query": "AAA"},
            "query": "BBB",
            "response_mode": "blocking",
            "user": "tester",
        },
        headers=_auth(COMPLETION),
    )
    assert response.json()["answer"] == "Echo: BBB"
    without = client.post(
        "/v1/completion-messages",
        json={"inputs": {"query": "AAA"}, "response_mode": "blocking", "user": "tester"},
        headers=_auth(COMPLETION),
    )
    assert without.json()["answer"] == "Echo: Answer this: AAA\n"


@pytest.mark.parametrize(("rec_id", "key"), [("27a", "app-failchat"), ("27c", "app-failwf")])
def test_27_failed_code_node_keeps_inputs_and_counts_one_exception(
    client: httpx.Client, rec_id: str, key: str
) -> None:
    body = replay(client, load(rec_id), key).text
    failed = [e["data"] for e in events(body) if e["event"] == "node_finished"][-1]
    recorded = [e["data"] for e in load(rec_id).sse_events if e["event"] == "node_finished"][-1]
    assert failed["status"] == "failed"
    assert failed["inputs"] == recorded["inputs"]
    finished = events(body)[-1]["data"]
    assert finished["exceptions_count"] == load(rec_id).sse_events[-1]["data"]["exceptions_count"]
    assert finished["exceptions_count"] == 1


def test_34e_llm_failure_in_a_chatflow_counts_one_exception(client: httpx.Client) -> None:
    body = replay(client, load("34e"), LLMFLOW).text
    assert events(body)[-1]["data"]["exceptions_count"] == 1


def test_failed_chatflow_message_is_stored_without_answer_and_with_run_failed(
    client: httpx.Client,
) -> None:
    """Measured on Dify 1.13.2 (issue 14 item 7): /messages has `answer: ""` and
    `error: "Run failed: …"` for a chatflow run that failed after streaming part of an answer."""
    body = replay(client, load("27a"), "app-failchat").text
    streamed = "".join(e["answer"] for e in events(body) if e["event"] == "message")
    assert streamed  # part of the answer did go out before the Code node failed
    conversation_id = events(body)[-1]["conversation_id"]
    (message,) = client.get(
        "/v1/messages",
        params={"conversation_id": conversation_id, "user": load("27a").request_json["user"]},
        headers=_auth("app-failchat"),
    ).json()["data"]
    assert message["answer"] == ""
    assert message["status"] == "error"
    assert message["error"].startswith("Run failed: Traceback")
    assert message["error"].endswith("ValueError: boom: kaboom\n")
