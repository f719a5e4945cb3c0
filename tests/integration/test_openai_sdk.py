"""The official openai SDK sees a normal OpenAI server for every Dify app mode."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.integration.conftest import BRIDGE_KEY, make_bridge
from tests.support.servers import free_port, serve_in_thread


@pytest.fixture
def client(bridge_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{bridge_url}/v1", api_key=BRIDGE_KEY, max_retries=0)


@pytest.fixture
def aclient(bridge_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{bridge_url}/v1", api_key=BRIDGE_KEY, max_retries=0)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


MODES = [
    ("o1", "hi", "喵"),  # advanced-chat (Cat_LLM)
    ("upper", "hello workflow", "HELLO WORKFLOW"),  # workflow: text_chunks of the End node
    ("echo-llm", "hello there", "Echo: hello there"),  # chat app
    ("agent", "hello agent", "Echo: hello agent"),  # agent-chat (streaming-only in Dify)
    ("completer", "complete me", "complete me"),  # completion app
]


@pytest.mark.parametrize(("model", "text", "expected"), MODES)
def test_non_stream_completion_for_every_mode(client, model, text, expected):
    completion = client.chat.completions.create(model=model, messages=ask(text))
    assert expected in completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == model
    assert completion.usage is not None


@pytest.mark.parametrize(("model", "text", "expected"), MODES)
def test_stream_for_every_mode(client, model, text, expected):
    stream = client.chat.completions.create(model=model, messages=ask(text), stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    text_out = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert expected in text_out


@pytest.mark.parametrize(("model", "text", "expected"), MODES[:3])
async def test_async_client_stream_and_non_stream(aclient, model, text, expected):
    completion = await aclient.chat.completions.create(model=model, messages=ask(text))
    assert expected in completion.choices[0].message.content
    stream = await aclient.chat.completions.create(model=model, messages=ask(text), stream=True)
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert expected in "".join(pieces)


def test_chat_app_usage_is_the_real_one(client):
    completion = client.chat.completions.create(model="echo-llm", messages=ask("count these words"))
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.total_tokens > 0
    assert (usage.prompt_tokens, usage.completion_tokens) != (100, 10)


def test_alias_maps_a_hard_coded_name(client):
    assert client.chat.completions.create(model="gpt-4o", messages=ask("hi")).choices[0].message.content == "喵"


def test_models_endpoints(client):
    ids = [m.id for m in client.models.list()]
    assert "o1" in ids and "upper" in ids
    assert client.models.retrieve("o1").id == "o1"
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("nope")
    assert err.value.code == "model_not_found"


def test_routes_without_the_v1_prefix(bridge_url):
    client = openai.OpenAI(base_url=bridge_url, api_key=BRIDGE_KEY, max_retries=0)
    assert client.chat.completions.create(model="o1", messages=ask("hi")).choices[0].message.content == "喵"
    assert httpx.get(f"{bridge_url}/healthz").json() == {"status": "ok"}
    index = httpx.get(f"{bridge_url}/", headers={"Authorization": f"Bearer {BRIDGE_KEY}"}).json()
    assert "o1" in index["models"]


def test_passthrough_uses_the_client_key_as_the_dify_key(bridge_url):
    # The client's own app key (LLMChatflow: no managed model uses it; a server-side key would
    # be refused).
    client = openai.OpenAI(base_url=f"{bridge_url}/v1", api_key="app-llmchatflow", max_retries=0)
    # Any model id works in passthrough (FastGPT sends whatever the admin typed).
    completion = client.chat.completions.create(model="whatever-the-admin-typed", messages=ask("hi"))
    assert completion.choices[0].message.content == "Echo: hi"
    assert completion.model == "whatever-the-admin-typed"


def test_a_server_side_app_key_is_refused_in_passthrough(bridge_url):
    client = openai.OpenAI(base_url=f"{bridge_url}/v1", api_key="app-cat-llm", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model="o1", messages=ask("hi"))
    assert err.value.response.headers["x-should-retry"] == "false"
    assert err.value.body["code"] == "invalid_api_key" and err.value.body["param"] is None


# ------------------------------------------------------------------ errors


def test_missing_key_is_401(bridge_url):
    response = httpx.post(f"{bridge_url}/v1/chat/completions",
                          json={"model": "o1", "messages": ask("hi")})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_wrong_bridge_key_is_401(bridge_url):
    client = openai.OpenAI(base_url=f"{bridge_url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="o1", messages=ask("hi"))


def test_bogus_dify_key_in_passthrough_is_401_without_the_key(bridge_url):
    client = openai.OpenAI(base_url=f"{bridge_url}/v1", api_key="app-bogusbogusbogus", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model="o1", messages=ask("hi"))
    assert "bogusbogus" not in str(err.value.body) and "bogusbogus" not in err.value.response.text


def test_managed_model_with_a_rejected_key_does_not_leak_it(client):
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model="bad-key", messages=ask("hi"))
    assert "not-a-real-key" not in err.value.response.text
    assert "configuration" in err.value.message


def test_unknown_model_is_404_model_not_found(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-5-turbo", messages=ask("hi"))
    assert err.value.code == "model_not_found"
    assert err.value.param == "model"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "o1"}, None),
        ({"model": "o1", "messages": []}, "messages"),
        ({"model": "o1", "messages": "hi"}, "messages"),
        ({"model": "o1", "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"model": "o1", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "o1", "messages": [{"role": "assistant", "content": "hi"}]}, "messages"),
        ({"model": "o1", "messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
        ({"model": 5, "messages": [{"role": "user", "content": "hi"}]}, "model"),
    ],
)
def test_malformed_requests_are_400(bridge_url, body, param):
    response = httpx.post(f"{bridge_url}/v1/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {BRIDGE_KEY}"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    if param:
        assert error["param"] == param
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["x-request-id"]


def test_malformed_json_is_400(bridge_url):
    response = httpx.post(f"{bridge_url}/v1/chat/completions", content=b'{"model": "o1", "messages": [',
                          headers={"Authorization": f"Bearer {BRIDGE_KEY}", "Content-Type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


def test_failing_workflow_is_a_non_retried_4xx(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="fail-flow", messages=ask("kaboom"))
    assert err.value.code == "dify_workflow_failed"
    assert err.value.response.headers["x-should-retry"] == "false"


def test_failing_chatflow_stream_raises_api_error_after_partial_answer(client):
    stream = client.chat.completions.create(model="fail-chat", messages=ask("kaboom"), stream=True)
    seen = []
    with pytest.raises(openai.APIError) as err:
        for chunk in stream:
            seen.append(chunk)
    assert not isinstance(err.value, openai.APIStatusError)
    assert "boom" in err.value.message
    assert err.value.code == "dify_workflow_failed"


def test_error_event_mid_stream_raises_api_error_with_difys_message(client):
    stream = client.chat.completions.create(model="echo-llm", messages=ask("FAILLLM please"), stream=True)
    with pytest.raises(openai.APIError) as err:
        list(stream)
    assert "model overloaded" in err.value.message


def test_dify_unreachable_is_502(emulator_url):
    with serve_in_thread(make_bridge(f"http://127.0.0.1:{free_port()}")) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=BRIDGE_KEY, max_retries=0)
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(model="o1", messages=ask("hi"))
    assert err.value.status_code == 502
    assert err.value.code == "dify_unreachable"


def test_silent_dify_is_504(emulator_url):
    # A chatflow with an unknown conversation: Dify pings once, then stays silent (rec. 13a).
    with serve_in_thread(make_bridge(emulator_url, first_event_timeout=1.0)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=BRIDGE_KEY, max_retries=0)
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(
                model="o1", messages=ask("hi"),
                extra_headers={"X-Dify-Conversation-Id": "3f0b6c2e-0000-4000-8000-000000000000"},
            )
    assert err.value.status_code in (404, 504)
