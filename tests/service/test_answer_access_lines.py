"""Access lines of /v1/responses and /v1/completions carry what chat lines carry: `stream`,
`ttft_ms` and Dify's usage (issue 17 item 7). Through `dify-bridge serve` against a scripted
Dify whose `message_end` reports 9 prompt and 3 completion tokens."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.shipped import ShippedBridge, shipped_bridge, upstream_process

REQUESTS = {
    "/v1/chat/completions": {"model": "o1", "messages": [{"role": "user", "content": "hi"}]},
    "/v1/responses": {"model": "o1", "input": "hi"},
    "/v1/completions": {"model": "o1", "prompt": "hi", "max_tokens": 16},
}
WAIT = 15.0


@pytest.fixture(scope="module")
def bridge() -> Iterator[ShippedBridge]:
    with upstream_process("scripted") as dify, shipped_bridge(dify) as served:
        yield served


def access_line(bridge: ShippedBridge, request_id: str) -> dict:
    deadline = time.monotonic() + WAIT
    while True:
        for line in bridge.log_lines():
            if line.get("request_id") == request_id and line.get("event") == "request":
                return line
        assert time.monotonic() < deadline, f"no access line for {request_id}"
        time.sleep(0.05)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("path", list(REQUESTS))
def test_the_access_line_has_stream_ttft_and_usage(
    bridge: ShippedBridge, path: str, stream: bool
) -> None:
    rid = f"req{path.replace('/', '-')}-{stream}"
    body = {**REQUESTS[path], "stream": stream}
    if stream and path != "/v1/responses":
        body["stream_options"] = {"include_usage": True}
    response = httpx.post(
        f"{bridge.url}{path}",
        # The scripted Dify's chat app, as a passthrough key (default settings).
        headers={"Authorization": "Bearer app-chat", "X-Request-Id": rid},
        json=body,
        timeout=WAIT,
    )
    assert response.status_code == 200, response.text
    line = access_line(bridge, rid)
    assert line["path"] == path and line["status"] == 200
    assert line["stream"] is stream
    assert line["ttft_ms"] is not None and 0 <= line["ttft_ms"] <= line["duration_ms"]
    assert (line["prompt_tokens"], line["completion_tokens"], line["total_tokens"]) == (9, 3, 12)
    assert "error_code" not in line and "incomplete" not in line
