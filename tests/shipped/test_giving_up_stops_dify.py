"""When the bridge gives up on a started run, Dify is stopped too (issue 17, item 2).

A run the bridge no longer reads would go on at Dify, spending tokens for nobody. The read
timeout needs a bridge with a short one (the default is 300 s); everything else runs on the
shipped defaults.
"""

from __future__ import annotations

import httpx
import pytest

from tests.shipped.helpers import CLIENT_TIMEOUT, auth, sse_data, stats, wait_for
from tests.support.shipped import shipped_bridge

CHAT = {"model": "o1", "messages": [{"role": "user", "content": "hi"}]}


def _stopped_after(dify: str, before: list[str]) -> list[str]:
    wait_for(lambda: len(stats(dify)["stops"]) > len(before))
    return stats(dify)["stops"][len(before) :]


def _stop_lines(bridge, reason: str) -> list[dict]:
    return [
        line
        for line in bridge.log_lines()
        if line.get("event") == "dify_task_stopped" and line.get("reason") == reason
    ]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_an_unreadable_event_ends_the_answer_and_stops_the_run(
    bridge, scripted_dify, stream
) -> None:
    before = stats(scripted_dify)["stops"]
    response = httpx.post(
        f"{bridge.url}/v1/chat/completions",
        json={**CHAT, "stream": stream},
        headers=auth("app-garbage"),
        timeout=CLIENT_TIMEOUT,
    )
    if stream:
        error = next(f for f in sse_data(response.text) if isinstance(f, dict) and "error" in f)
        assert error["error"]["code"] == "dify_bad_event"
    else:
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "dify_bad_event"
    assert len(_stopped_after(scripted_dify, before)) == 1
    assert wait_for(lambda: stats(scripted_dify)["open_streams"] == 0)
    assert wait_for(lambda: _stop_lines(bridge, "dify_bad_event"))
    request_ids = {line["request_id"] for line in _stop_lines(bridge, "dify_bad_event")}
    assert response.headers["x-request-id"] in request_ids


def test_a_read_timeout_ends_the_answer_and_stops_the_run(scripted_dify) -> None:
    with shipped_bridge(scripted_dify, BRIDGE_READ_TIMEOUT="1") as bridge:
        before = stats(scripted_dify)["stops"]
        response = httpx.post(
            f"{bridge.url}/v1/chat/completions",
            json={**CHAT, "stream": True},
            headers=auth("app-stall"),
            timeout=CLIENT_TIMEOUT,
        )
        frames = sse_data(response.text)
        error = next(f for f in frames if isinstance(f, dict) and "error" in f)
        assert error["error"]["code"] == "dify_timeout"
        assert frames[-1] == "[DONE]"
        assert len(_stopped_after(scripted_dify, before)) == 1
        assert wait_for(lambda: _stop_lines(bridge, "dify_timeout"))


def test_a_finished_answer_is_never_stopped(bridge, scripted_dify) -> None:
    before = stats(scripted_dify)["stops"]
    for key in ("app-chat", "app-flow-1132", "app-flow-19", "app-workflow"):
        response = httpx.post(
            f"{bridge.url}/v1/chat/completions",
            json=CHAT,
            headers=auth(key),
            timeout=CLIENT_TIMEOUT,
        )
        assert response.status_code == 200
    assert wait_for(lambda: stats(scripted_dify)["open_streams"] == 0)
    assert stats(scripted_dify)["stops"] == before
