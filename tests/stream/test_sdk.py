"""The official openai SDK against the bridge: usage on the last chunk, mid-stream errors as
`openai.APIError`, keepalives on a silent flow (stream and the non-stream opt-in)."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.support.recordings import load
from tests.support.replay import DifyReplay

KEY = "app-replaykey0000000000"
MESSAGES = [{"role": "user", "content": "hi"}]


def sdk(base_url: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=30)


@pytest.mark.parametrize(
    ("rec", "path", "mode", "usage"),
    [
        ("30a", "chat-messages", "chat", (11, 4, 15)),
        ("01", "chat-messages", "advanced-chat", (0, 0, 0)),
        # Workflow runs report only a total (workflow_finished.data.total_tokens).
        ("33a", "chat-messages", "advanced-chat", None),
    ],
)
def test_include_usage_fills_chunk_usage_on_the_last_chunk(served_replay, rec, path, mode, usage):
    replay = DifyReplay.of(rec, path, mode=mode)
    end = next(e for e in load(rec).sse_events if e["event"] == "message_end")["metadata"]["usage"]
    expected = usage or (end["prompt_tokens"], end["completion_tokens"], end["total_tokens"])
    with served_replay(replay) as url:
        chunks = list(
            sdk(url).chat.completions.create(
                model="o1", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
    last = chunks[-1]
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == expected
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_workflow_usage_is_the_run_total(served_replay):
    replay = DifyReplay.of("05", "workflows/run", mode="workflow")
    total = next(e for e in load("05").sse_events if e["event"] == "workflow_finished")["data"]["total_tokens"]
    with served_replay(replay) as url:
        completion = sdk(url).chat.completions.create(model="o1", messages=MESSAGES)
    assert completion.usage.total_tokens == total
    assert completion.choices[0].message.content == "HELLO WORKFLOW\n14"


def test_non_stream_usage_is_dify_real_usage(served_replay):
    with served_replay(DifyReplay.of("30a", mode="chat")) as url:
        completion = sdk(url).chat.completions.create(model="o1", messages=MESSAGES)
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 4)


# Mid-stream failures: Dify `error` event (34a), failed chatflow (27a), failed workflow (27c).
ERROR_CASES = [
    ("34a", "chat-messages", "chat", "completion_request_error", "fake upstream 503: model overloaded"),
    ("27a", "chat-messages", "advanced-chat", "dify_workflow_failed", "ValueError: boom: kaboom"),
    ("27c", "workflows/run", "workflow", "dify_workflow_failed", "ValueError: boom: kaboom"),
]


@pytest.mark.parametrize(("rec", "path", "mode", "code", "message"), ERROR_CASES)
def test_mid_stream_failure_raises_api_error_while_iterating(served_replay, capfd, rec, path, mode, code, message):
    replay = DifyReplay.of(rec, path, mode=mode)
    with served_replay(replay) as url:
        stream = sdk(url).chat.completions.with_raw_response.create(
            model="o1", messages=MESSAGES, stream=True, extra_headers={"X-Request-Id": f"req-{rec}"}
        )
        assert stream.status_code == 200
        seen = []
        with pytest.raises(openai.APIError) as raised:
            for chunk in stream.parse():
                seen.append(chunk)
    assert not isinstance(raised.value, openai.APIStatusError)
    assert message in raised.value.message
    assert raised.value.code == code
    assert seen and seen[0].choices[0].delta.role == "assistant"
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    failed = [line for line in lines if line.get("event") == "run_failed"]
    assert len(failed) == 1
    assert failed[0]["request_id"] == f"req-{rec}" and failed[0]["code"] == code


def test_upstream_disconnect_mid_stream_is_an_api_error(served_replay):
    events = load("30a").body.split(b"\n\n")

    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self):
            yield events[0] + b"\n\n"
            raise httpx.ReadError("connection reset by peer")

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Broken())

    replay = DifyReplay(routes={"chat-messages": answer}, mode="chat")
    with served_replay(replay) as url, pytest.raises(openai.APIError) as raised:
        for _ in sdk(url).chat.completions.create(model="o1", messages=MESSAGES, stream=True):
            pass
    # A reset after the run started is reported like a clean early close (issue 17 item 6).
    assert raised.value.code == "dify_stream_interrupted"


def raw_stream(url: str, key: str, body: dict) -> tuple[list[tuple[float, bytes]], httpx.Response]:
    """POST and keep every body piece with its arrival time."""
    pieces: list[tuple[float, bytes]] = []
    with httpx.Client(timeout=30) as client, client.stream(
        "POST", f"{url}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        for piece in response.iter_raw():
            pieces.append((time.monotonic(), piece))
    return pieces, response


SLEEPY = {"model": "o1", "messages": [{"role": "user", "content": "wait"}], "inputs": {"sleep": 2}}


def test_silent_flow_gets_keepalive_comments_and_the_sdk_completes(served_bridge):
    with served_bridge(keepalive_interval=0.3) as url:
        pieces, response = raw_stream(url, "app-slowchat", {**SLEEPY, "stream": True})
        assert response.status_code == 200
        wire = b"".join(p for _, p in pieces).decode()
        assert wire.count(": keepalive\n\n") >= 2
        assert wire.rstrip().endswith("data: [DONE]")
        text = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in sdk(url, "app-slowchat").chat.completions.create(
                model="o1", messages=SLEEPY["messages"], stream=True, extra_body={"inputs": {"sleep": 2}}
            )
            if chunk.choices
        )
    assert text.startswith("working on: wait ... ") and "done" in text


def test_non_stream_keepalive_pads_with_whitespace_and_the_sdk_parses_it(served_bridge):
    with served_bridge(keepalive_interval=0.3, nonstream_keepalive=True) as url:
        pieces, response = raw_stream(url, "app-slowchat", SLEEPY)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        body = b"".join(p for _, p in pieces)
        assert body.startswith(b"  ")  # the first space at once, more while the flow is silent
        assert pieces[0][1].strip() == b""
        assert json.loads(body)["object"] == "chat.completion"
        completion = sdk(url, "app-slowchat").chat.completions.create(
            model="o1", messages=SLEEPY["messages"], extra_body={"inputs": {"sleep": 2}}
        )
    assert completion.choices[0].message.content.startswith("working on: wait ... ")


def test_non_stream_keepalive_failure_is_an_error_body_with_status_200(served_bridge):
    with served_bridge(keepalive_interval=0.3, nonstream_keepalive=True) as url:
        pieces, response = raw_stream(url, "app-failchat", {"model": "o1", "messages": MESSAGES})
    assert response.status_code == 200
    error = json.loads(b"".join(p for _, p in pieces))["error"]
    assert error["code"] == "dify_workflow_failed" and "boom" in error["message"]


def test_non_stream_without_the_opt_in_is_a_plain_json_response(served_bridge):
    with served_bridge(keepalive_interval=0.3) as url:
        pieces, response = raw_stream(url, "app-slowchat", SLEEPY)
    assert b"".join(p for _, p in pieces).startswith(b"{")
    assert "content-length" in response.headers
