"""Unknown paths: a 404 that lists what the bridge serves; OpenAI endpoints Dify has no
equivalent for say so plainly."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.integration.conftest import BRIDGE_KEY

AUTH = {"Authorization": f"Bearer {BRIDGE_KEY}"}


@pytest.mark.parametrize(
    ("method", "path", "what"),
    [
        ("POST", "/v1/embeddings", "embeddings"),
        ("POST", "/v1/images/generations", "image generation"),
        ("POST", "/v1/moderations", "moderation"),
        ("POST", "/v1/audio/transcriptions", "audio"),
        ("POST", "/v1/audio/speech", "audio"),
    ],
)
def test_openai_endpoints_without_a_dify_equivalent(bridge_url, method, path, what):
    reply = httpx.request(method, f"{bridge_url}{path}", headers=AUTH, json={})
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["code"] == "unsupported_endpoint"
    assert f"no equivalent of OpenAI's {what}" in error["message"]
    assert "POST /v1/chat/completions" in error["message"]
    assert set(error) == {"message", "type", "param", "code"}


def test_unknown_path_lists_what_is_served(bridge_url):
    reply = httpx.post(f"{bridge_url}/v1/chat/complete", headers=AUTH, json={})
    assert reply.status_code == 404
    message = reply.json()["error"]["message"]
    assert message.startswith("Unknown path /v1/chat/complete.")
    for served in ("/v1/chat/completions", "/v1/responses", "/v1/completions", "/v1/models"):
        assert served in message
    assert reply.json()["error"]["code"] == "not_found"
    assert reply.headers["x-should-retry"] == "false"


def test_the_sdk_sees_a_not_found_error(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.embeddings.create(model="o1", input="hi")
    assert "Dify" in err.value.message
