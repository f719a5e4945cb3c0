from __future__ import annotations

import msgspec
import pytest

from bridge.errors import BridgeError
from bridge.openai.types import ChatCompletionRequest
from bridge.translate.request import build_call, dify_user, validate_request


def test_chat_modes_send_query_and_conversation():
    call = build_call(mode="advanced-chat", query="hi", user="u", inputs={"a": 1}, conversation_id="c")
    assert call.path == "chat-messages"
    assert call.payload == {"inputs": {"a": 1}, "query": "hi", "response_mode": "streaming",
                            "conversation_id": "c", "user": "u"}
    assert call.stop_path.format(task_id="t") == "chat-messages/t/stop"


@pytest.mark.parametrize(("mode", "path", "stop"), [
    ("workflow", "workflows/run", "workflows/tasks/t/stop"),
    ("completion", "completion-messages", "completion-messages/t/stop"),
])
def test_non_chat_modes_put_the_message_in_an_input(mode, path, stop):
    call = build_call(mode=mode, query="hi", user="u", inputs={"a": 1}, query_input="q")
    assert call.path == path and call.stop_path.format(task_id="t") == stop
    assert call.payload == {"inputs": {"a": 1, "q": "hi"}, "response_mode": "streaming", "user": "u"}


def test_dify_user_is_stable_and_never_the_key():
    assert dify_user(None, "app-secretkey") == dify_user(None, "app-secretkey")
    assert "secretkey" not in dify_user(None, "app-secretkey")
    assert dify_user(" alice ", "app-x") == "alice"
    assert dify_user(None, "app-a") != dify_user(None, "app-b")


@pytest.mark.parametrize("body", [
    {"model": "o1", "messages": []},
    {"model": "o1", "messages": [{"role": "system", "content": "only a system prompt"}]},
    {"model": "o1", "messages": [{"role": "user", "content": "x"}], "n": 3},
    {"model": " ", "messages": [{"role": "user", "content": "x"}]},
])
def test_requests_that_cannot_be_served_are_400(body):
    with pytest.raises(BridgeError) as err:
        validate_request(msgspec.convert(body, ChatCompletionRequest))
    assert err.value.status == 400


def test_text_parts_join_into_the_query():
    request = msgspec.convert({"model": "o1", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "http://x"}},
        {"type": "text", "text": "b"}]}]}, ChatCompletionRequest)
    assert request.messages[0].text() == "a\nb"
