"""Output moderation (`message_replace`, rec. 44b chat / 44d chatflow) per model option:
`hold` (the default) keeps the answer back until the end; `replace` (opt-in) streams and then
sends the replacement."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.stream.conftest import AUTH, HI
from tests.support.recordings import load
from tests.support.replay import DifyReplay, _Body
from tests.support.sse import content_of, parse_sse

BLOCKED = "[output blocked by keyword moderation]"
ORIGINAL = "Echo: boom goes the dynamite"
MODERATION_ON = {
    "enabled": True,
    "type": "keywords",
    "config": {
        "keywords": "kaboom\necho: boom",
        "inputs_config": {"enabled": True, "preset_response": "[input blocked by keyword moderation]"},
        "outputs_config": {"enabled": True, "preset_response": BLOCKED},
    },
}


def parameters(sensitive_word_avoidance: dict | None):
    """`GET /parameters` as recorded for a chat app (30e), with the moderation feature set."""

    def answer(request: httpx.Request) -> httpx.Response:
        if sensitive_word_avoidance is None:
            return httpx.Response(404, json={"code": "not_found", "message": "old Dify", "status": 404})
        body = load("30e").json
        body["sensitive_word_avoidance"] = sensitive_word_avoidance
        return httpx.Response(200, json=body)

    return answer


def replay(rec: str, mode: str, feature: dict | None) -> DifyReplay:
    return DifyReplay(routes={"chat-messages": load(rec), "parameters": parameters(feature)}, mode=mode)


async def stream(bridge_for, replay_: DifyReplay, moderation: str) -> list[dict]:
    async with bridge_for(replay_, models=[{"id": "o1", "moderation": moderation, "reasoning": "off"}]) as client:
        response = await client.post("/v1/chat/completions", json={**HI, "stream": True}, headers=AUTH)
    chunks, done, _ = parse_sse(response.text)
    assert done
    return chunks


@pytest.mark.parametrize(("rec", "mode"), [("44b", "chat"), ("44d", "advanced-chat")])
@pytest.mark.parametrize("stream_", [True, False], ids=["stream", "non-stream"])
async def test_default_settings_never_show_blocked_text(bridge_for, rec, mode, stream_):
    # No moderation option anywhere, no model list: the single-app set-up (DIFY_API_KEY) with
    # nothing configured, on a real Dify's recorded moderated answer.
    replay_ = replay(rec, mode, MODERATION_ON)
    async with bridge_for(replay_, dify_api_key="app-server-side-key-000") as client:
        response = await client.post(
            "/v1/chat/completions", json={**HI, "stream": stream_}, headers={"Authorization": "Bearer any"}
        )
    assert response.status_code == 200
    assert "boom" not in response.text.lower()
    if stream_:
        chunks, done, _ = parse_sse(response.text)
        assert done
        assert content_of(chunks) == BLOCKED
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    else:
        assert response.json()["choices"][0]["message"]["content"] == BLOCKED


@pytest.mark.parametrize(("rec", "mode"), [("44b", "chat"), ("44d", "advanced-chat")])
async def test_replace_streams_the_answer_then_the_replacement(bridge_for, rec, mode):
    chunks = await stream(bridge_for, replay(rec, mode, MODERATION_ON), "replace")
    assert content_of(chunks) == f"{ORIGINAL}\n\n{BLOCKED}"


@pytest.mark.parametrize(("rec", "mode"), [("44b", "chat"), ("44d", "advanced-chat")])
@pytest.mark.parametrize("feature", [MODERATION_ON, None], ids=["moderation-on", "parameters-unknown"])
async def test_hold_never_shows_blocked_text(bridge_for, rec, mode, feature):
    replay_ = replay(rec, mode, feature)
    chunks = await stream(bridge_for, replay_, "hold")
    assert content_of(chunks) == BLOCKED
    assert "boom" not in "".join(str(c) for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_hold_sends_an_unmoderated_answer_whole_at_the_end(bridge_for):
    chunks = await stream(bridge_for, replay("30a", "chat", MODERATION_ON), "hold")
    contents = [c["choices"][0]["delta"]["content"] for c in chunks[1:] if c["choices"][0]["delta"].get("content")]
    assert contents == ["Echo: hello llm world"]


def answer_then_silence(request: httpx.Request) -> httpx.Response:
    """Recording 30a up to its `message_end`, then Dify stays silent (a slow last step)."""
    recording = load("30a")
    body = recording.body[: recording.body.index(b'data: {"event":"message_end"')]
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Body(body, hang=True))


async def test_hold_is_skipped_when_the_app_has_no_output_moderation(served_replay):
    # Without output moderation the answer streams before the run ends; held, it would wait
    # for message_end, which never comes here.
    off = {**MODERATION_ON, "config": {**MODERATION_ON["config"], "outputs_config": {"enabled": False}}}
    replay_ = DifyReplay(routes={"chat-messages": answer_then_silence, "parameters": parameters(off)}, mode="chat")
    content = ""
    with served_replay(replay_, models=[{"id": "o1", "moderation": "hold", "reasoning": "off"}]) as url:
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("POST", f"{url}/chat/completions", json={**HI, "stream": True}, headers=AUTH) as response,
            asyncio.timeout(20),
        ):
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    content += json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                if content == "Echo: hello llm world":
                    break
    assert content == "Echo: hello llm world"


async def test_moderation_lookup_shares_the_cached_parameters(bridge_for):
    # Input validation and the hold decision read one cached `GET /parameters` per app.
    replay_ = replay("30a", "chat", MODERATION_ON)
    async with bridge_for(replay_, models=[{"id": "o1", "moderation": "hold"}]) as client:
        for _ in range(2):
            response = await client.post("/v1/chat/completions", json={**HI, "stream": True}, headers=AUTH)
            assert content_of(parse_sse(response.text)[0]) == "Echo: hello llm world"
    assert sum(r.url.path.endswith("/parameters") for r in replay_.requests) == 1
