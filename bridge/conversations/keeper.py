"""Per-request use of the conversation store: plan the Dify turn, remember it afterwards.

Glue between the pure planner (`bridge.conversations`) and the serving layer, so that
`ChatService` only asks "what do I send?" and says "this is what the client got".
"""

from __future__ import annotations

import re
import uuid

import msgspec
import structlog

from bridge.conversations import (
    ConversationStore,
    NormalisedMessage,
    StoreUnavailable,
    TurnPlan,
    chat_key,
    claim_turn,
    look_up_turn,
    normalise_messages,
    plan_turn,
    record_turn,
)
from bridge.dify.client import DifyTarget
from bridge.errors import bad_request
from bridge.openai.types import ChatCompletionRequest
from bridge.settings import ModelConfig, Settings
from bridge.translate.request import CHAT_MODES, require_user_text

log = structlog.get_logger("bridge.conversations")

# Open WebUI's background prompts (title, tags, follow-ups) start like this (clients.md).
_TASK_PROMPT = re.compile(r"^\s*###\s*Task:", re.IGNORECASE)


class TurnContext(msgspec.Struct, kw_only=True):
    """What `remember` needs once the answer is known."""

    app_id: str
    user: str
    messages: list[NormalisedMessage]
    plan: TurnPlan
    chat_key: str | None = None
    background: bool = False
    system_in_query: bool = True
    """System text goes into carried history (no input variable took it); kept for replans."""
    claim: str | None = None
    """The head claim of a continued conversation (``claim_turn``), released by `remember`."""


def pinned_conversation(header: str | None, body: str | None) -> str | None:
    value = (header or body or "").strip()
    if not value:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise bad_request(
            "conversation_id must be a UUID (a Dify conversation id).", param="conversation_id"
        ) from None


class ConversationKeeper:
    def __init__(self, settings: Settings, store: ConversationStore | None) -> None:
        self.settings = settings
        self.store = store

    def is_background_task(self, request: ChatCompletionRequest, task_header: str | None) -> bool:
        if task_header:
            return True
        last = request.messages[-1]
        return last.role == "user" and bool(_TASK_PROMPT.match(last.text()))

    async def plan(
        self,
        request: ChatCompletionRequest,
        *,
        config: ModelConfig,
        target: DifyTarget,
        mode: str,
        user: str,
        pinned: str | None,
        client_chat_key: str | None,
        background: bool,
        system_in_query: bool = True,
    ) -> TurnContext:
        # Before the Dify run starts: an empty query only makes a chatflow hang (issue 10).
        require_user_text(request, mode)
        messages = normalise_messages(m.to_dict() for m in request.messages)
        app_id = target.identity
        if mode not in CHAT_MODES or background:
            # Workflow/completion apps keep no conversation; background tasks must not create
            # or advance the user's one. Both get one self-contained query.
            history = "last" if config.history == "last" or background else "flatten"
            plan = plan_turn(messages, history=history, system_in_query=system_in_query)
            return TurnContext(
                app_id=app_id, user=user, messages=messages, plan=plan, background=background
            )
        key = chat_key(app_id, user, client_chat_key) if client_chat_key else None
        lookup = None
        if config.history == "conversation" and not pinned and self.store is not None:
            lookup = await look_up_turn(
                self.store, app_id=app_id, user=user, messages=messages, chat_key=key
            )
        plan = plan_turn(
            messages,
            history=config.history,
            lookup=lookup,
            pinned_conversation_id=pinned,
            system_in_query=system_in_query,
        )
        claim = None
        if plan.reason == "hit" and lookup is not None and self.store is not None:
            # Only one request may continue a conversation from a given state (issue 13).
            lookup, claim = await claim_turn(self.store, lookup)
            if claim is None:
                plan = plan_turn(messages, lookup=lookup, system_in_query=system_in_query)
        log.debug("conversation_plan", reason=plan.reason, carried_history=plan.carried_history)
        return TurnContext(
            app_id=app_id,
            user=user,
            messages=messages,
            plan=plan,
            chat_key=key,
            system_in_query=system_in_query,
            claim=claim,
        )

    def replan_as_new(self, context: TurnContext) -> TurnContext:
        """The stored conversation is gone at Dify: start a new one carrying the history."""
        plan = plan_turn(
            context.messages,
            history="conversation",
            lookup=None,
            system_in_query=context.system_in_query,
        )
        return msgspec.structs.replace(context, plan=plan, claim=None)

    async def remember(
        self, context: TurnContext, answer: str, conversation_id: str | None
    ) -> None:
        if self.store is None or not context.plan.remember or not conversation_id:
            return
        await record_turn(
            self.store,
            app_id=context.app_id,
            user=context.user,
            messages=context.messages,
            answer=answer,
            conversation_id=conversation_id,
            chat_key=context.chat_key,
            claim=context.claim,
        )

    async def forget(self, conversation_id: str) -> None:
        if self.store is None:
            return
        try:
            await self.store.forget_conversation(conversation_id)
        except StoreUnavailable as exc:
            log.warning("conversation store unavailable; mapping not dropped", error=str(exc))
