"""Streamed chatflow/workflow runs refused before their first event (issue 14 item 2).

Source: recording 07b shows only the ping; re-measured on the same Dify 1.13.2 the stream then
stayed open, silent, for ~300 s (23:43:10 → 23:48:11), for a missing required input, an invalid
select value, a wrong input type and a non-numeric number alike. Blocking mode answers 400.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from bridge.emulator import EmulatorConfig, create_emulator_app
from tests.emulator.sse import names
from tests.support.recordings import DSL_DIR
from tests.support.servers import serve_in_thread

WF_UPPER, ECHO, SLOWWF = "app-wf-upper", "app-echochat", "app-slowwf"

# (key, route, inputs, the blocking 400 message)
REFUSED = {
    "missing required": (WF_UPPER, "/v1/workflows/run", {}, "query is required in input form"),
    "invalid select": (
        ECHO,
        "/v1/chat-messages",
        {"system_prompt": "be brief", "tone": "angry"},
        "tone in input form must be one of the following: ['plain', 'loud']",
    ),
    "wrong type": (
        ECHO,
        "/v1/chat-messages",
        {"system_prompt": 42},
        "(type 'paragraph') system_prompt in input form must be a string",
    ),
    "non-numeric number": (
        SLOWWF,
        "/v1/workflows/run",
        {"sleep": "soon"},
        "sleep in input form must be a valid number",
    ),
}


def _body(inputs: dict, mode: str) -> dict:
    return {"inputs": inputs, "query": "hi", "response_mode": mode, "user": "tester"}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_blocking_refusal_is_a_400(client: httpx.Client, case: str) -> None:
    key, route, inputs, message = REFUSED[case]
    response = client.post(route, json=_body(inputs, "blocking"), headers=_auth(key))
    assert response.status_code == 400
    assert response.json() == {"code": "invalid_param", "message": message, "status": 400}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_streamed_refusal_is_one_ping_then_silence_until_the_hold_ends(
    client: httpx.Client, case: str
) -> None:
    key, route, inputs, _ = REFUSED[case]
    started = time.monotonic()
    response = client.post(route, json=_body(inputs, "streaming"), headers=_auth(key))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert names(response.text) == ["ping"]
    # the test emulator holds for 0.6 s (conftest); the stream must not end at once
    assert time.monotonic() - started >= 0.5


def test_required_text_input_accepts_an_empty_string(client: httpx.Client) -> None:
    # A real Dify runs the flow with "" for a required text input (issue 10 item 7).
    response = client.post(
        "/v1/workflows/run",
        json={"inputs": {"query": ""}, "response_mode": "blocking", "user": "tester"},
        headers=_auth(WF_UPPER),
    )
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "succeeded"


async def test_default_hold_keeps_the_stream_open_like_dify() -> None:
    """On the real default (300 s) the stream is still open, with nothing after the ping."""
    assert EmulatorConfig().start_failure_hold == 300.0
    app = create_emulator_app(EmulatorConfig(dsl_dir=Path(DSL_DIR)))
    with serve_in_thread(app) as url:
        async with (
            httpx.AsyncClient(base_url=url, timeout=10) as client,
            client.stream(
                "POST", "/v1/workflows/run", json=_body({}, "streaming"), headers=_auth(WF_UPPER)
            ) as response,
        ):
            assert response.status_code == 200
            chunks = response.aiter_raw()
            received = b""
            while b"\n\n" not in received:
                received += await asyncio.wait_for(anext(chunks), 5)
            assert received == b"event: ping\n\n"
            # Bounded wait: within it neither data nor the end of the stream may arrive.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(chunks), 1.5)
            # leaving the block closes the client side; the emulator must notice and move on


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
