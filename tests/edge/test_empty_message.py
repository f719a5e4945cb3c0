"""A user message with no text on a chat-type app is a 400 at once, with no Dify run; workflow
apps get what they are sent, as a real Dify accepts "" there (issue 10, item 7)."""

from __future__ import annotations

import httpx
import pytest
from litestar.testing import AsyncTestClient

from bridge import create_app, load_settings
from tests.support.recordings import load
from tests.support.replay import DifyReplay

AUTH = {"Authorization": "Bearer app-client-key-0001"}

EMPTY_MESSAGES = {
    "no-content": {"role": "user"},
    "null": {"role": "user", "content": None},
    "empty-string": {"role": "user", "content": ""},
    "whitespace": {"role": "user", "content": " \n\t "},
    "no-parts": {"role": "user", "content": []},
    "empty-text-part": {"role": "user", "content": [{"type": "text", "text": "  "}]},
}


def bridge(replay: DifyReplay) -> AsyncTestClient:
    env = {"DIFY_API_URL": "http://dify.test/v1", "BRIDGE_STORE": "memory://", "LOG_FORMAT": "json"}
    return AsyncTestClient(create_app(load_settings(env=env), dify_transport=replay.transport))


@pytest.mark.parametrize("mode", ["advanced-chat", "chat", "agent-chat"])
@pytest.mark.parametrize("message", EMPTY_MESSAGES.values(), ids=EMPTY_MESSAGES.keys())
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
async def test_empty_user_message_on_a_chat_app_is_400_without_a_dify_run(mode, message, stream):
    replay = DifyReplay(routes={"chat-messages": load("01")}, mode=mode)
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "earlier"},
        {"role": "assistant", "content": "answer"},
        message,
    ]
    async with bridge(replay) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "o1", "messages": history, "stream": stream},
            headers=AUTH,
        )
    assert response.status_code == 400, response.text
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == "empty_message"
    assert error["param"] == "messages[3].content"
    assert "empty" in error["message"]
    assert not any(r.url.path.endswith("chat-messages") for r in replay.requests)


async def test_workflow_app_gets_an_empty_message_as_is():
    # Real Dify runs a workflow with "" in a required text input: no rule is invented here.
    replay = DifyReplay(routes={"workflows/run": load("05")}, mode="workflow")
    async with bridge(replay) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "o1", "messages": [{"role": "user", "content": ""}]},
            headers=AUTH,
        )
    assert response.status_code == 200, response.text
    (body,) = replay.bodies("workflows/run")
    assert body["inputs"]["query"] == ""


async def test_an_image_without_text_is_served_with_its_marker_as_the_query():
    replay = DifyReplay(
        routes={"chat-messages": load("30a"), "parameters": lambda _: parameters_with_images()},
        mode="chat",
    )
    message = {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}],
    }
    async with bridge(replay) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "o1", "messages": [message]},
            headers=AUTH,
        )
    assert response.status_code == 200, response.text
    (body,) = replay.bodies("chat-messages")
    assert body["query"].startswith("[image:") and body["query"].strip()
    assert body["files"][0]["transfer_method"] == "remote_url"


def parameters_with_images() -> httpx.Response:
    """`/parameters` of a chat app (30e) with image upload on, as Dify shows it."""
    body = load("30e").json
    body["file_upload"] = {
        "enabled": True,
        "allowed_file_types": ["image"],
        "allowed_file_upload_methods": ["remote_url", "local_file"],
        "number_limits": 3,
        "image": {
            "enabled": True,
            "number_limits": 3,
            "transfer_methods": ["remote_url", "local_file"],
        },
    }
    return httpx.Response(200, json=body)
