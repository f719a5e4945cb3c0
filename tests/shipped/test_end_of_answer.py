"""The answer ends at Dify's end event, not at Dify's socket close (issue 17, item 1).

A real Dify often keeps the connection open after its last event: 1.13.2 for ~300 s after an
input moderation block (rec. 44c), Dify ≤ 1.10 while it generates a new conversation's title.
And chatflows end in three orders (dify-versions.md §1.5): ≤ 1.12 `workflow_finished` before
`message_replace`/`message_end`; 1.13.0 no `message_end`, then close; ≥ 1.13.1 `message_end`
first. Every case here goes through `dify-bridge serve` as shipped (default settings) to a
stand-in that holds the socket after its script: a client that hangs fails on its timeout.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.shipped.helpers import CLIENT_TIMEOUT, auth, sse_data, stats, wait_for

HELLO = "Hello there"
BLOCKED = "Blocked by moderation."
DIFY_USAGE = (9, 3, 12)  # what the scripts' message_end says
# key → (answer, (prompt, completion, total) tokens the client must get)
CASES: dict[str, tuple[str, tuple[int, int, int]]] = {
    "app-chat": (HELLO, DIFY_USAGE),
    "app-agent": (HELLO, DIFY_USAGE),
    "app-completion": (HELLO, DIFY_USAGE),
    "app-flow-1132": (HELLO, DIFY_USAGE),
    # The blocked "Echo: boom" must never reach the client; usage is message_end's.
    "app-flow-19": (BLOCKED, DIFY_USAGE),
    # No message_end ever: the workflow's total is all there is.
    "app-flow-1130": (HELLO, (0, 12, 12)),
    "app-flow-blocked": (BLOCKED, (0, 0, 0)),
    "app-workflow": (HELLO, (0, 12, 12)),
}


def _chat(url: str, key: str, stream: bool) -> tuple[str, tuple[int, int, int]]:
    body = {"model": "o1", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    response = httpx.post(
        f"{url}/v1/chat/completions", json=body, headers=auth(key), timeout=CLIENT_TIMEOUT
    )
    assert response.status_code == 200, response.text
    if not stream:
        data = response.json()
        usage = data["usage"]
        assert data["choices"][0]["finish_reason"] == "stop"
        return data["choices"][0]["message"]["content"], _tokens(
            usage, "prompt_tokens", "completion_tokens"
        )
    frames = sse_data(response.text)
    assert frames[-1] == "[DONE]"
    chunks = frames[:-1]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    usage = next(c["usage"] for c in chunks if c.get("usage"))
    return text, _tokens(usage, "prompt_tokens", "completion_tokens")


def _responses(url: str, key: str, stream: bool) -> tuple[str, tuple[int, int, int]]:
    body = {"model": "o1", "input": "hi", "stream": stream}
    response = httpx.post(
        f"{url}/v1/responses", json=body, headers=auth(key), timeout=CLIENT_TIMEOUT
    )
    assert response.status_code == 200, response.text
    if stream:
        events = sse_data(response.text)
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        completed = [e for e in events if e["type"] == "response.completed"]
        assert len(completed) == 1
        final = completed[0]["response"]
    else:
        final = response.json()
        text = "".join(
            part["text"]
            for item in final["output"]
            if item["type"] == "message"
            for part in item["content"]
        )
    assert final["status"] == "completed"
    return text, _tokens(final["usage"], "input_tokens", "output_tokens")


def _completions(url: str, key: str, stream: bool) -> tuple[str, tuple[int, int, int]]:
    body: dict[str, Any] = {"model": "o1", "prompt": "hi", "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    response = httpx.post(
        f"{url}/v1/completions", json=body, headers=auth(key), timeout=CLIENT_TIMEOUT
    )
    assert response.status_code == 200, response.text
    if not stream:
        data = response.json()
        return data["choices"][0]["text"], _tokens(
            data["usage"], "prompt_tokens", "completion_tokens"
        )
    frames = sse_data(response.text)
    assert frames[-1] == "[DONE]"
    text = "".join(c["choices"][0]["text"] for c in frames[:-1] if c.get("choices"))
    usage = next(c["usage"] for c in frames[:-1] if c.get("usage"))
    return text, _tokens(usage, "prompt_tokens", "completion_tokens")


def _tokens(usage: dict[str, int], prompt: str, completion: str) -> tuple[int, int, int]:
    return usage[prompt], usage[completion], usage["total_tokens"]


DIALECTS = {"chat": _chat, "responses": _responses, "completions": _completions}


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("key", sorted(CASES))
def test_the_answer_ends_at_difys_end_event(bridge, scripted_dify, key, dialect, stream) -> None:
    before = stats(scripted_dify)
    text, usage = DIALECTS[dialect](bridge.url, key, stream)
    answer, tokens = CASES[key]
    assert text == answer
    assert usage == tokens
    # The upstream connection is released at once, and a finished run is not stopped.
    assert wait_for(lambda: stats(scripted_dify)["open_streams"] == 0), stats(scripted_dify)
    assert stats(scripted_dify)["stops"] == before["stops"]


def test_the_ending_is_logged_as_a_success_with_dify_usage(bridge) -> None:
    def access_lines() -> list[dict]:
        return [
            line
            for line in bridge.log_lines()
            if line.get("event") == "request"
            and line.get("path") == "/v1/chat/completions"
            and line.get("prompt_tokens") == 9
        ]

    seen = len(access_lines())
    _chat(bridge.url, "app-flow-19", stream=True)
    # The access line is written once the last byte went out: wait for it (bounded).
    assert wait_for(lambda: len(access_lines()) > seen)
    last = access_lines()[-1]
    assert last["status"] == 200 and "error_code" not in last and "incomplete" not in last
    assert (last["prompt_tokens"], last["completion_tokens"]) == (9, 3)
