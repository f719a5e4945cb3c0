"""What differs between Dify 0.15.3 and 1.13.x, parsed from recorded-shape bodies
(dify-versions.md §1.6, §2.5, §2.6, §3, §4): each test fails without the bridge's handling."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from bridge.dify import events as ev
from bridge.dify.client import DifyAPIError, DifyClient, DifyTarget
from bridge.dify.versions import ServerVersions, limitations, parse_version
from bridge.engine.modes import PROBE_USER, AppModeCache
from bridge.translate.errors import from_dify_error
from bridge.translate.stream import ContentDelta, Failed, Finished, StreamTranslator

TARGET = DifyTarget("http://dify.test/v1", "app-key")
HINT = (
    " You have requested this URI [/v1/chat-messages] but did you mean /v1/chat-messages or "
    "/v1/chat-messages/<string:task_id>/stop ?"
)


def _client(handler) -> DifyClient:
    return DifyClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)))


def _refusal(status: int, body: Any) -> DifyAPIError:
    client = _client(lambda request: httpx.Response(status, json=body))
    with pytest.raises(DifyAPIError) as caught:
        asyncio.run(client.request_json(TARGET, "POST", "chat-messages", json={}))
    return caught.value


# -- error bodies ---------------------------------------------------------------------------


def test_reqparse_shape_up_to_1_7() -> None:
    exc = _refusal(
        400,
        {
            "code": "invalid_param",
            "message": "Missing required parameter in the JSON body",
            "params": "inputs",
        },
    )
    assert (exc.code, exc.message) == (
        "invalid_param",
        "Missing required parameter in the JSON body",
    )
    assert exc.fields == {"inputs": "Missing required parameter in the JSON body"}


def test_restx_shape_1_8_to_1_10_has_no_code() -> None:
    exc = _refusal(
        400,
        {
            "errors": {
                "inputs": "Input parameters for chat Missing required parameter in the JSON body"
            },
            "message": "Input payload validation failed",
        },
    )
    assert exc.code == "invalid_param"
    assert "Input payload validation failed" in exc.message
    assert "inputs: Input parameters for chat" in exc.message
    error = from_dify_error(exc, managed=True)
    assert (error.status, error.code) == (400, "invalid_param")


def test_pydantic_shape_from_1_11() -> None:
    text = "1 validation error for ChatRequestPayload\ninputs\n  Field required [type=missing]"
    exc = _refusal(400, {"code": "invalid_param", "message": text, "status": 400})
    assert (exc.code, exc.message, exc.fields) == ("invalid_param", text, {})


def test_the_1_8_not_found_hint_is_stripped() -> None:
    exc = _refusal(
        404, {"code": "not_found", "message": "Conversation Not Exists." + HINT, "status": 404}
    )
    assert exc.message == "Conversation Not Exists."
    other = _refusal(
        404, {"code": "not_found", "message": "Workflow not found." + HINT, "status": 404}
    )
    error = from_dify_error(other, managed=True)
    assert (error.status, error.message) == (404, "Workflow not found.")


@pytest.mark.parametrize(
    "body",
    [
        # Every release: the ValueError handler catches AppInvokeQuotaExceededError first.
        {
            "code": "invalid_param",
            "message": "Too many requests. Please try again later.",
            "status": 400,
        },
    ],
)
def test_the_concurrency_limit_becomes_a_retryable_429(body: dict[str, Any]) -> None:
    error = from_dify_error(_refusal(400, body), managed=True)
    assert (error.status, error.code, error.type) == (
        429,
        "rate_limit_exceeded",
        "rate_limit_error",
    )
    assert error.retryable
    assert error.headers()["retry-after"]


def test_other_invalid_params_stay_400() -> None:
    body = {
        "code": "invalid_param",
        "message": "system_prompt is required in input form",
        "status": 400,
    }
    error = from_dify_error(_refusal(400, body), managed=True)
    assert (error.status, error.retryable) == (400, False)


# -- events ---------------------------------------------------------------------------------


def _feed(mode: str, frames: list[tuple[str, dict[str, Any] | None]]) -> list[Any]:
    translator = StreamTranslator(mode, reasoning=True)
    out: list[Any] = []
    for name, data in frames:
        out.extend(translator.feed(ev.decode_event(name, json.dumps(data) if data else "")))
    return out + translator.finish()


def _text(items: list[Any]) -> str:
    return "".join(item.text for item in items if isinstance(item, ContentDelta))


def test_message_file_answers_of_1_11_2_to_1_12_are_text() -> None:
    ids = {"conversation_id": "c", "message_id": "m", "task_id": "t"}
    items = _feed(
        "chat",
        [
            ("", {"event": "message_file", "id": "m", "answer": "Echo: ", **ids}),
            ("", {"event": "message_file", "id": "m", "answer": "hi", **ids}),
            ("", {"event": "message_end", "id": "m", "metadata": {}, **ids}),
        ],
    )
    assert _text(items) == "Echo: hi"
    assert isinstance(items[-1], Finished)


def test_a_message_file_with_a_url_stays_a_file() -> None:
    file = {
        "event": "message_file",
        "id": "f1",
        "type": "image",
        "belongs_to": "assistant",
        "url": "http://dify.test/files/tools/f1.png",
    }
    items = _feed("agent-chat", [("", file), ("", {"event": "message_end", "metadata": {}})])
    assert "http://dify.test/files/tools/f1.png" in _text(items)


def test_events_of_other_releases_never_break_a_stream() -> None:
    """parallel_branch_* (≤ 1.8), loop_* (≥ 1.0.1), agent_log (≥ 1.0.0, no node_id in 1.0.0),
    workflow_paused / human_input_* (≥ 1.13), sequence_number (≤ 1.4.1)."""
    frames: list[tuple[str, dict[str, Any] | None]] = [
        (
            "",
            {
                "event": "workflow_started",
                "workflow_run_id": "r",
                "data": {"id": "r", "sequence_number": 1},
            },
        ),
        ("", {"event": "parallel_branch_started", "data": {"parallel_id": "p"}}),
        ("", {"event": "loop_started", "data": {"id": "l", "node_id": "n", "title": "Loop"}}),
        ("", {"event": "loop_next", "data": {"id": "l", "node_id": "n", "index": 1}}),
        ("", {"event": "agent_log", "data": {"id": "a", "label": "ROUND 1", "status": "success"}}),
        ("", {"event": "human_input_required", "data": {"form_id": "f"}}),
        ("", {"event": "parallel_branch_finished", "data": {"parallel_id": "p"}}),
        ("", {"event": "some_future_event", "data": {"x": [1, 2]}}),
        ("", {"event": "message", "answer": "done", "conversation_id": "c"}),
        (
            "",
            {
                "event": "workflow_finished",
                "data": {"id": "r", "status": "succeeded", "sequence_number": 1, "total_tokens": 3},
            },
        ),
        (
            "",
            {
                "event": "message_end",
                "metadata": {
                    "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}
                },
            },
        ),
    ]
    items = _feed("advanced-chat", frames)
    assert not any(isinstance(item, Failed) for item in items)
    assert _text(items) == "done"
    assert items[-1].usage.prompt_tokens == 2


# -- mode without /info mode (< 1.4) ------------------------------------------------------


def _old_dify(mode: str, shape: str) -> tuple[DifyClient, list[str]]:
    """A Dify < 1.4 app of `mode`: /info without mode, endpoints refuse in Dify's order (the
    mode check first, then the body) with the era's body-error `shape`."""
    calls: list[str] = []
    validation = {
        "reqparse": {
            "code": "invalid_param",
            "message": "Missing required parameter in the JSON body",
            "params": "inputs",
        },
        "restx": {
            "errors": {"inputs": "Missing required parameter"},
            "message": "Input payload validation failed",
        },
    }[shape]
    chat_type = mode in ("chat", "agent-chat", "advanced-chat")

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1/")
        calls.append(f"{request.method} {path}")
        if path == "info":
            return httpx.Response(200, json={"name": "App", "description": "", "tags": []})
        assert json.loads(request.content) == {"user": PROBE_USER}  # nothing that could run
        if path == "chat-messages" and not chat_type:
            return httpx.Response(
                400,
                json={
                    "code": "not_chat_app",
                    "message": "Please check if your app mode matches the right API route.",
                    "status": 400,
                },
            )
        if path == "workflows/run" and mode != "workflow":
            return httpx.Response(
                400,
                json={
                    "code": "not_workflow_app",
                    "message": "Please check if your Workflow app mode matches the right API route.",
                    "status": 400,
                },
            )
        return httpx.Response(400, json=validation)

    return _client(handler), calls


@pytest.mark.parametrize("shape", ["reqparse", "restx"])
@pytest.mark.parametrize(
    ("mode", "learned"),
    [
        ("chat", "advanced-chat"),
        ("advanced-chat", "advanced-chat"),
        ("workflow", "workflow"),
        ("completion", "completion"),
    ],
)
def test_the_mode_is_learned_without_a_run(mode: str, learned: str, shape: str) -> None:
    client, calls = _old_dify(mode, shape)
    cache = AppModeCache(client, ttl=60)
    assert asyncio.run(cache.mode(TARGET, "auto")) == learned
    assert asyncio.run(cache.mode(TARGET, "auto")) == learned  # cached: no second probe
    assert calls[0] == "GET info" and calls.count("GET info") == 1


def test_info_with_mode_is_trusted() -> None:
    client = _client(lambda request: httpx.Response(200, json={"name": "A", "mode": "workflow"}))
    assert asyncio.run(AppModeCache(client, ttl=60).mode(TARGET, "auto")) == "workflow"


# -- server_version ---------------------------------------------------------------------------


def test_server_version_is_read_without_a_key_and_cached_per_upstream() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        version = "0.15.3" if request.url.host == "old.test" else "1.9.2"
        return httpx.Response(
            200, json={"welcome": "Dify OpenAPI", "api_version": "v1", "server_version": version}
        )

    async def run() -> list[str | None]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            versions = ServerVersions(http)
            return [
                await versions.get("http://old.test/v1"),
                await versions.get("http://new.test/v1/"),
                await versions.get("http://old.test/v1/"),
            ]

    assert asyncio.run(run()) == ["0.15.3", "1.9.2", "0.15.3"]
    assert seen == [("http://old.test/v1/", None), ("http://new.test/v1/", None)]


def test_limitations_per_release() -> None:
    assert parse_version("1.13.2") == (1, 13, 2)
    assert len(limitations("0.15.3")) == 3
    assert len(limitations("1.3.1")) == 2
    assert [line for line in limitations("1.4.3")] == [
        "no workflow version pinning (workflow_id is ignored by Dify < 1.7.2)"
    ]
    assert limitations("1.13.2") == [] and limitations(None) == []


def test_workflow_paused_ends_the_answer_with_one_clear_error() -> None:
    """Dify ≥ 1.13 ends a stream at `workflow_paused` (a Human Input node waits)."""
    items = _feed(
        "workflow",
        [
            ("", {"event": "workflow_started", "workflow_run_id": "r", "data": {"id": "r"}}),
            ("", {"event": "human_input_required", "data": {"form_id": "f"}}),
            (
                "",
                {"event": "workflow_paused", "workflow_run_id": "r", "data": {"status": "paused"}},
            ),
        ],
    )
    failures = [item for item in items if isinstance(item, Failed)]
    assert [f.error.code for f in failures] == ["dify_workflow_paused"]
