"""Bridge keys turn passthrough off; the server's own Dify key and oversized or malformed
credentials are refused before any Dify call (issue 10, items 2 and 5)."""

from __future__ import annotations

import httpx
import pytest
from litestar.testing import AsyncTestClient

from bridge import create_app, load_settings
from bridge.errors import BridgeError
from bridge.routing import MAX_CREDENTIAL_LENGTH, ModelRegistry, credential_from_header
from tests.support.recordings import load
from tests.support.replay import DifyReplay

SERVER_KEY = "app-server-side-key-0001"
MODEL_KEY = "app-model-key-0002"
BRIDGE_KEY = "sk-bridge-key-0003"
HI = {"model": "o1", "messages": [{"role": "user", "content": "hi"}]}


def registry(**settings: object) -> ModelRegistry:
    return ModelRegistry(load_settings(env={}, **settings), "http://dify/v1")


def assert_error(response: httpx.Response, status: int, code: str | None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == code
    return error


def bridge(replay: DifyReplay, **settings: object) -> AsyncTestClient:
    env = {"DIFY_API_URL": "http://dify.test/v1", "BRIDGE_STORE": "memory://", "LOG_FORMAT": "json"}
    return AsyncTestClient(
        create_app(load_settings(env=env, **settings), dify_transport=replay.transport)
    )


# ---------------------------------------------------------------- passthrough default


def test_passthrough_is_on_without_bridge_keys_and_off_with_them():
    assert load_settings(env={}).passthrough is True
    assert load_settings(env={"BRIDGE_API_KEYS": BRIDGE_KEY}).passthrough is False
    both = {"BRIDGE_API_KEYS": BRIDGE_KEY, "BRIDGE_PASSTHROUGH": "true"}
    assert load_settings(env=both).passthrough is True
    assert load_settings(env={}, api_keys=[BRIDGE_KEY], passthrough=True).passthrough is True


def test_with_bridge_keys_an_app_key_is_refused_unless_passthrough_is_explicit():
    models = [{"id": "o1", "app_key": MODEL_KEY}]
    closed = registry(api_keys=[BRIDGE_KEY], models=models)
    with pytest.raises(BridgeError) as err:
        closed.resolve("o1", "app-some-client-key")
    assert err.value.status == 401 and err.value.code == "invalid_api_key"
    opened = registry(api_keys=[BRIDGE_KEY], models=models, passthrough=True)
    route = opened.resolve("o1", "app-some-client-key")
    assert not route.managed and route.target.api_key == "app-some-client-key"


@pytest.mark.parametrize("passthrough", [True, None])
@pytest.mark.parametrize("api_keys", [[BRIDGE_KEY], []])
@pytest.mark.parametrize("key", [SERVER_KEY, MODEL_KEY])
def test_the_servers_own_dify_key_is_never_a_client_credential(passthrough, api_keys, key):
    reg = registry(
        api_keys=api_keys,
        passthrough=passthrough,
        dify_api_key=SERVER_KEY,
        models=[{"id": "other", "app_key": MODEL_KEY}],
    )
    with pytest.raises(BridgeError) as err:
        reg.resolve("o1", key)
    # The same answer as any wrong key: the bridge does not confirm which keys are real.
    assert err.value.status == 401 and err.value.message == "Incorrect API key provided."


async def test_refused_keys_never_reach_dify():
    replay = DifyReplay.of("30a", mode="chat")
    async with bridge(
        replay, api_keys=[BRIDGE_KEY], dify_api_key=SERVER_KEY, model_name="o1"
    ) as client:
        for key in (SERVER_KEY, "app-guessing-0000000000"):
            response = await client.post(
                "/v1/chat/completions", json=HI, headers={"Authorization": f"Bearer {key}"}
            )
            assert_error(response, 401, "invalid_api_key")
            assert key not in response.text
        assert replay.requests == []
        ok = await client.post(
            "/v1/chat/completions", json=HI, headers={"Authorization": f"Bearer {BRIDGE_KEY}"}
        )
    assert ok.status_code == 200
    assert all(r.headers["authorization"] == f"Bearer {SERVER_KEY}" for r in replay.requests)


# ---------------------------------------------------------------- oversized / malformed


@pytest.mark.parametrize("length", [MAX_CREDENTIAL_LENGTH + 1, 64 * 1024 - 100])
async def test_oversized_key_is_401_without_calling_dify(length):
    replay = DifyReplay(routes={"chat-messages": load("30a")}, mode="chat")
    key = "app-" + "x" * (length - 4)
    async with bridge(replay) as client:
        response = await client.post(
            "/v1/chat/completions", json=HI, headers={"Authorization": f"Bearer {key}"}
        )
    error = assert_error(response, 401, "invalid_api_key")
    assert "too long" in error["message"]
    assert "xxxxxxxx" not in response.text
    assert replay.requests == []


@pytest.mark.parametrize(
    "header", ["Bearer app-two keys", "Bearer app-tab\tkey", "Bearer app-ключ", "app-a\x01b"]
)
async def test_malformed_authorization_is_400_without_calling_dify(header):
    replay = DifyReplay(routes={"chat-messages": load("30a")}, mode="chat")
    async with bridge(replay) as client:
        response = await client.post(
            "/v1/chat/completions",
            json=HI,
            headers={"Authorization": header.encode("utf-8")},
        )
    assert_error(response, 400, "invalid_authorization_header")
    assert replay.requests == []


def test_a_key_of_the_longest_allowed_length_is_accepted():
    key = "sk-" + "k" * (MAX_CREDENTIAL_LENGTH - 3)
    assert credential_from_header(f"Bearer {key}") == key
