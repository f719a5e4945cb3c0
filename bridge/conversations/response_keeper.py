"""Per-request use of the response store: where a Responses turn continues, and recording it.

- A request without `previous_response_id` is an ordinary chat turn (its `input` may carry the
  whole history, which the conversation store recognises as for chat completions).
- `previous_response_id` naming the **latest** response of its Dify conversation continues that
  conversation: the turn is pinned to it, so Dify gets only the new input.
- Naming an **older** response forks: Dify cannot rewind a conversation, so a new one starts
  with that response's history carried in the query, exactly like a regenerated chat turn.
  (The same happens when the conversation is gone at Dify, or the app keeps no conversations.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog

from bridge.conversations import StoreUnavailable
from bridge.conversations.responses import ResponseStore, StoredResponse
from bridge.errors import BridgeError
from bridge.openai.types import ChatCompletionRequest
from bridge.routing import ModelRoute
from bridge.translate.request import dify_user
from bridge.translate.responses import History, ResponseBuilder, turn_history

log = structlog.get_logger("bridge.responses")


def response_not_found(response_id: str, *, param: str | None = None) -> BridgeError:
    """Shaped like OpenAI's answer for an unknown (or someone else's) response id."""
    return BridgeError(
        404,
        f"Response with id '{response_id}' not found.",
        param=param,
        code="response_not_found",
        retryable=False,
    )


def owner_of(credential: str | None) -> str:
    """Who may read a stored response: the caller's key, hashed as for Dify's `user`."""
    return dify_user(None, credential)


class Continuation:
    """How a Responses turn relates to the stored ones."""

    def __init__(self, history: History, pinned: str | None, previous: str | None) -> None:
        self.history = history
        self.pinned = pinned
        self.previous = previous


async def continuation(
    store: ResponseStore,
    previous_id: str | None,
    *,
    route: ModelRoute,
    user: str,
) -> Continuation:
    if not previous_id:
        return Continuation([], None, None)
    try:
        previous = await store.get(previous_id)
    except StoreUnavailable as exc:
        log.warning("response store unavailable", error=str(exc))
        raise BridgeError(
            503, "The response store is unavailable; try again.", code="store_unavailable"
        ) from None
    # Another app's or another user's response is as unknown as a missing one.
    if previous is None or previous.app_id != route.target.identity or previous.user != user:
        raise response_not_found(previous_id, param="previous_response_id")
    pinned = None
    if previous.conversation_id:
        try:
            head = await store.head(previous.conversation_id)
        except StoreUnavailable:
            head = None  # unknown: forking is always safe, continuing might skip turns
        if head == previous.id:
            pinned = previous.conversation_id
    log.debug("response_continuation", previous=previous_id, continues=pinned is not None)
    return Continuation(previous.history, pinned, previous_id)


class ResponseRecorder:
    """Stores a finished Response before the client sees its end (a follow-up naming it may
    come at once), wrapping whatever frames the delivery engine produces."""

    def __init__(
        self,
        store: ResponseStore,
        builder: ResponseBuilder,
        *,
        chat: ChatCompletionRequest,
        route: ModelRoute,
        user: str,
        owner: str,
        enabled: bool,
    ) -> None:
        self.store = store
        self.builder = builder
        self.chat = chat
        self.route = route
        self.user = user
        self.owner = owner
        self.enabled = enabled
        self._done = False

    async def frames(self, frames: AsyncIterator[bytes], run: object) -> AsyncIterator[bytes]:
        async for frame in frames:
            if self.builder.final is not None and not self._done:
                await self.record(run)
            yield frame

    async def record(self, run: object) -> None:
        final = self.builder.final
        if self._done or final is None:
            return
        self._done = True
        if not self.enabled:
            return
        completed = final.status == "completed"
        # The run's translator knows Dify's message id; read defensively, it is advisory.
        translator = getattr(run, "translator", None)
        record = StoredResponse(
            id=final.id,
            owner=self.owner,
            app_id=self.route.target.identity,
            user=self.user,
            # A failed turn is never continued in place: a follow-up forks with the history.
            conversation_id=getattr(run, "conversation_id", None) if completed else None,
            message_id=getattr(translator, "message_id", None),
            history=turn_history(self.chat, self.builder.output_text if completed else None),
            response=final,
        )
        try:
            await self.store.put(record)
        except StoreUnavailable as exc:
            log.warning("response not stored", error=str(exc))
