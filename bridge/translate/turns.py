"""Which text goes to Dify as the turn's `query`, and in which conversation."""

from __future__ import annotations

import msgspec

from bridge.openai.types import ChatCompletionRequest, ChatMessage
from bridge.settings import ModelConfig
from bridge.translate.request import CHAT_MODES, last_user_message


class TurnInput(msgspec.Struct, kw_only=True):
    query: str
    conversation_id: str | None = None
    pinned_conversation: str | None = None
    reason: str = "new"


def render_transcript(messages: list[ChatMessage]) -> str:
    lines = []
    for message in messages:
        text = message.text().strip()
        if text:
            lines.append(f"{message.role.capitalize()}: {text}")
    return "\n\n".join(lines)


def plan_query(
    request: ChatCompletionRequest,
    config: ModelConfig,
    mode: str,
    *,
    pinned_conversation: str | None = None,
) -> TurnInput:
    last = last_user_message(request.messages)
    earlier = request.messages[: request.messages.index(last)]
    if pinned_conversation and mode in CHAT_MODES:
        return TurnInput(
            query=last.text(),
            conversation_id=pinned_conversation,
            pinned_conversation=pinned_conversation,
            reason="pinned",
        )
    if not earlier or config.history == "last":
        return TurnInput(query=last.text(), reason="new")
    transcript = render_transcript(earlier)
    query = f"{transcript}\n\nUser: {last.text()}" if transcript else last.text()
    return TurnInput(query=query, reason="flatten")
