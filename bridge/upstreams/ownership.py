"""Which upstream a conversation lives on.

A Dify conversation belongs to one app on one instance. The conversation store keys every
head by the app it was recorded for (`TurnContext.app_id` = the upstream's identity), so the
upstream whose namespace holds the head of this history *is* the owner: no new field in any
store, and heads written before the model had several upstreams belong to the upstream whose
URL and key they were written with (the first one, when the model grew a group).
"""

from __future__ import annotations

from bridge.conversations import (
    ConversationStore,
    chat_key,
    look_up_turn,
    normalise_messages,
    plan_turn,
)
from bridge.openai.types import ChatCompletionRequest
from bridge.upstreams.group import Upstream, UpstreamGroup


async def find_owner(
    store: ConversationStore | None,
    group: UpstreamGroup,
    request: ChatCompletionRequest,
    *,
    user: str,
    client_chat_key: str | None,
) -> Upstream | None:
    """The upstream where this history continues a stored conversation, if any."""
    if store is None or group.config.history != "conversation":
        return None
    if len(request.messages) < 2 and not client_chat_key:
        return None  # a first message continues nothing: no store reads for it
    messages = normalise_messages(message.to_dict() for message in request.messages)
    for upstream in group.members:
        app_id = upstream.target.identity
        key = chat_key(app_id, user, client_chat_key) if client_chat_key else None
        lookup = await look_up_turn(
            store, app_id=app_id, user=user, messages=messages, chat_key=key
        )
        if lookup.conversation_id is None:
            continue
        if plan_turn(messages, history="conversation", lookup=lookup).reason == "hit":
            return upstream
    return None
