"""OpenAI chat request → the Dify call that serves it (pure functions)."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from bridge.errors import bad_request
from bridge.openai.types import ChatCompletionRequest, ChatMessage, RefusalPart, TextPart

CHAT_MODES = frozenset({"chat", "agent-chat", "advanced-chat", "agent"})


class DifyCall(msgspec.Struct, kw_only=True):
    """One streaming call to Dify: where to send it, what to send, and how to stop it."""

    mode: str
    path: str
    stop_path: str  # with `{task_id}`
    payload: dict[str, Any]

    @property
    def user(self) -> str:
        return self.payload["user"]

    @property
    def conversation_id(self) -> str | None:
        return self.payload.get("conversation_id") or None


def endpoint_for(mode: str) -> tuple[str, str]:
    """The generation path and stop path template of an app mode."""
    if mode in CHAT_MODES:
        return "chat-messages", "chat-messages/{task_id}/stop"
    if mode == "completion":
        return "completion-messages", "completion-messages/{task_id}/stop"
    if mode == "workflow":
        return "workflows/run", "workflows/tasks/{task_id}/stop"
    raise ValueError(f"unknown Dify app mode {mode!r}")


def build_call(
    *,
    mode: str,
    query: str,
    user: str,
    inputs: dict[str, Any],
    query_input: str = "query",
    conversation_id: str | None = None,
    files: list[dict[str, Any]] | None = None,
    auto_generate_name: bool = True,
) -> DifyCall:
    """Map one turn onto Dify's request body for the app's mode (always streaming)."""
    path, stop_path = endpoint_for(mode)
    payload: dict[str, Any]
    if mode in CHAT_MODES:
        payload = {
            "inputs": inputs,
            "query": query,
            "response_mode": "streaming",
            "conversation_id": conversation_id or "",
            "user": user,
        }
        if not auto_generate_name:
            payload["auto_generate_name"] = False
    else:
        # Completion and workflow apps have no `query`: the message goes into an input variable.
        payload = {
            "inputs": {**inputs, query_input: query},
            "response_mode": "streaming",
            "user": user,
        }
    if files:
        payload["files"] = files
    return DifyCall(mode=mode, path=path, stop_path=stop_path, payload=payload)


def dify_user(request_user: str | None, credential: str | None) -> str:
    """Dify's `user`: the request's own `user`, else a stable id derived from the client key.

    The key itself never leaves the bridge; one key may serve many chats, which the
    conversation fingerprint (not this id) tells apart.
    """
    if request_user and request_user.strip():
        return request_user.strip()[:255]
    if not credential:
        return "bridge-anonymous"
    return "bridge-" + hashlib.sha256(credential.encode()).hexdigest()[:24]


def last_user_message(messages: list[ChatMessage]) -> ChatMessage:
    for message in reversed(messages):
        if message.role == "user":
            return message
    raise bad_request("messages must contain at least one user message", param="messages")


def require_user_text(request: ChatCompletionRequest, mode: str) -> None:
    """Chat apps need text in the user's message: 400 at once when it has none.

    A real Dify 1.13.2 chatflow given an empty `query` sends `event: ping` and then nothing
    (the client would wait for the first-event timeout), and chat/agent apps refuse it; OpenAI
    itself 400s a missing content. Workflow and completion apps are left alone: their message
    goes into an input variable, and Dify runs a flow with "" in a required text input.

    A message with attachments but no text (an image alone) is served: its query is the
    attachment's marker (`[image:…]`, see conversations.fingerprint) and the file goes along,
    since Dify's `query` must not be empty and a vision model can answer an image alone.
    """
    if mode not in CHAT_MODES:
        return
    found = [(i, m) for i, m in enumerate(request.messages) if m.role == "user"]
    if not found:
        return  # validate_request already refused a request without a user message
    index, message = found[-1]
    if message.text().strip():
        return
    if isinstance(message.content, list) and any(
        not isinstance(part, TextPart | RefusalPart) for part in message.content
    ):
        return
    raise bad_request(
        f"The user message messages[{index}] is empty: a Dify chat app needs text to answer.",
        param=f"messages[{index}].content",
        code="empty_message",
    )


def validate_request(request: ChatCompletionRequest) -> None:
    """Checks msgspec's types cannot express."""
    if not request.messages:
        raise bad_request("messages must be a non-empty array", param="messages")
    if not request.model.strip():
        raise bad_request("model must be a non-empty string", param="model")
    if request.n is not None and request.n != 1:
        raise bad_request("Invalid value for 'n': only n=1 is supported.", param="n")
    last_user_message(request.messages)
