"""The client tests that matter, against every Dify profile, through the real `dify-bridge
serve` (conftest.py: one emulator + one bridge process per profile).

Models are `mode: auto`: on 0.15.3 and 1.0.x `/info` has no mode, so the bridge learns it
without a run (engine/modes.py); a workflow or completion model fails here without that.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from typing import Any

import httpx

from tests.shipped.helpers import CLIENT_TIMEOUT, auth, sse_data, wait_for
from tests.support.shipped import _entry_point, clean_env
from tests.versions.conftest import BRIDGE_KEY, REPO_ROOT, Pair

# A 1x1 PNG: an image the chat app accepts (it has image upload on).
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
        "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
).decode()


def _chat(pair: Pair, model: str, content: Any, *, stream: bool, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream}
    body.update(extra)
    return httpx.post(
        f"{pair.bridge.v1}/chat/completions",
        json=body,
        headers={**auth(BRIDGE_KEY), **extra.pop("headers", {})},
        timeout=CLIENT_TIMEOUT,
    )


def _streamed_text(response: httpx.Response) -> tuple[str, list[Any]]:
    assert response.status_code == 200, response.text
    chunks = sse_data(response.text)
    assert chunks[-1] == "[DONE]", response.text[-500:]
    text = "".join(
        (choice.get("delta") or {}).get("content") or ""
        for chunk in chunks[:-1]
        for choice in chunk.get("choices", [])
    )
    return text, chunks[:-1]


def _answer(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def test_chat_streams(pair: Pair) -> None:
    text, chunks = _streamed_text(_chat(pair, "chat", "hello there", stream=True))
    assert "Echo: hello there" in text
    assert [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")][-1] == "stop"


def test_chatflow_non_stream_with_usage(pair: Pair) -> None:
    response = _chat(pair, "flow", "hello there", stream=False)
    assert "hello there" in _answer(response)
    # ≤ 1.12 sends usage in message_end after workflow_finished: the bridge waits for it.
    if pair.version != "1.13.0":  # 1.13.0 sends no message_end at all
        assert response.json()["usage"]["prompt_tokens"] > 0


def test_multi_turn_stays_in_one_dify_conversation(pair: Pair) -> None:
    first = _chat(pair, "chat", "first turn", stream=False)
    answer = _answer(first)
    conversation = first.headers["x-dify-conversation-id"]
    body = {
        "model": "chat",
        "stream": True,
        "messages": [
            {"role": "user", "content": "first turn"},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "second turn"},
        ],
    }
    second = httpx.post(
        f"{pair.bridge.v1}/chat/completions",
        json=body,
        headers=auth(BRIDGE_KEY),
        timeout=CLIENT_TIMEOUT,
    )
    text, _ = _streamed_text(second)
    assert "second turn" in text
    assert second.headers["x-dify-conversation-id"] == conversation


def test_workflow(pair: Pair) -> None:
    assert "HELLO WORLD" in _answer(_chat(pair, "upper", "hello world", stream=False))
    text, _ = _streamed_text(_chat(pair, "upper", "stream me", stream=True))
    assert "STREAM ME" in text


def test_completion_app(pair: Pair) -> None:
    assert "Echo" in _answer(_chat(pair, "complete", "complete me", stream=False))


def test_a_failing_run_is_an_error(pair: Pair) -> None:
    # ≤ 1.12 follow `workflow_finished` (failed) with an `error` event; 1.13 do not.
    response = _chat(pair, "fail", "hi", stream=False)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "dify_workflow_failed"
    assert "boom: hi" in response.json()["error"]["message"]
    streamed = _chat(pair, "fail", "hi", stream=True)
    assert streamed.status_code == 200
    errors = [c["error"] for c in sse_data(streamed.text) if isinstance(c, dict) and "error" in c]
    assert [e["code"] for e in errors] == ["dify_workflow_failed"], streamed.text[-800:]


def test_moderation(pair: Pair) -> None:
    blocked = _answer(_chat(pair, "mod", "kaboom please", stream=False))
    assert blocked == "[input blocked by keyword moderation]"
    text, _ = _streamed_text(_chat(pair, "mod", "kaboom please", stream=True))
    assert text == "[input blocked by keyword moderation]"


def test_image_upload(pair: Pair) -> None:
    """On 1.11.2–1.12.x the answer to a message with a file comes as `message_file` events
    carrying `answer` (dify#31888): without reading them the answer is empty."""
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    text, _ = _streamed_text(_chat(pair, "chat", content, stream=True))
    assert "Echo: what is this" in text
    assert "Echo: what is this" in _answer(_chat(pair, "chat", content, stream=False))


def _journal(pair: Pair) -> list[dict[str, Any]]:
    base = pair.dify.removesuffix("/v1")
    return httpx.get(f"{base}/_emulator/journal", timeout=5).json()


def test_stop_on_disconnect(pair: Pair) -> None:
    body = {"model": "slow", "messages": [{"role": "user", "content": "wait"}], "stream": True}
    with (
        httpx.Client(timeout=CLIENT_TIMEOUT) as client,
        client.stream(
            "POST", f"{pair.bridge.v1}/chat/completions", json=body, headers=auth(BRIDGE_KEY)
        ) as response,
    ):
        assert response.status_code == 200
        next(response.iter_lines())  # the run has started
    assert wait_for(
        lambda: any(
            e["method"] == "POST" and e["path"].endswith("/stop") and e["app"] == "SlowChat"
            for e in _journal(pair)
        )
    ), "the bridge did not stop the Dify run after the client left"


def test_error_mapping(pair: Pair) -> None:
    wrong_key = httpx.post(
        f"{pair.bridge.v1}/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
        headers=auth("sk-wrong"),
        timeout=CLIENT_TIMEOUT,
    )
    assert wrong_key.status_code == 401
    dify_refused = _chat(pair, "badkey", "hi", stream=False)
    assert dify_refused.status_code == 401, dify_refused.text
    assert dify_refused.json()["error"]["code"] == "invalid_api_key"
    unknown = _chat(pair, "no-such-model", "hi", stream=False)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"
    for stream in (False, True):
        missing = _chat(pair, "echo", "hi", stream=stream)
        assert missing.status_code == 400, missing.text
        assert "system_prompt" in missing.json()["error"]["message"]


def test_unknown_conversation_fast_path(pair: Pair) -> None:
    """≤ 1.12 refuse an unknown conversation at once with a 404 whose message gains a "did you
    mean" hint from 1.8; the client sees Dify's message without it."""
    unknown = str(uuid.uuid4())
    for model in ("chat", "flow"):
        for stream in (False, True):
            response = _chat(
                pair, model, "hi", stream=stream, headers={"X-Dify-Conversation-Id": unknown}
            )
            assert response.status_code == 404, response.text
            error = response.json()["error"]
            assert error["code"] == "conversation_not_found"
            assert "did you mean" not in error["message"]


def test_readyz_and_check_report_the_version(pair: Pair) -> None:
    ready = httpx.get(
        f"{pair.bridge.url}/readyz", headers=auth(BRIDGE_KEY), timeout=CLIENT_TIMEOUT
    ).json()
    assert ready["checks"]["dify"]["version"] == pair.version
    assert ready["failed"] == ["model:badkey"]  # the one model configured with a wrong key
    env = clean_env(DIFY_API_URL=pair.dify, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [*_entry_point(), "check", "--config", str(pair.config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Dify version: {pair.version}" in done.stdout
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[2:] if line.strip()}
    for model in ("chat", "flow", "upper", "complete"):
        assert "ok (reachable, key valid)" in rows[model], done.stdout
    assert "→ workflow" in rows["upper"] and "→ completion" in rows["complete"], done.stdout


def test_auto_generate_name_per_model(pair: Pair) -> None:
    base = pair.dify.removesuffix("/v1")
    httpx.delete(f"{base}/_emulator/journal", timeout=5)
    assert "untitled" in _answer(_chat(pair, "chat-untitled", "untitled", stream=False))
    assert "titled" in _answer(_chat(pair, "chat", "titled", stream=False))
    sent = {
        e["json"]["query"]: e["json"].get("auto_generate_name", True)
        for e in _journal(pair)
        if e["path"].endswith("/chat-messages") and e["json"]
    }
    assert sent == {"untitled": False, "titled": True}
