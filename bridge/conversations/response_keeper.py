"""Per-request use of the response store: who may use a stored response, where a Responses
turn continues, what its `item_reference` inputs name, and recording it.

**Ownership.** A stored response — and each of its output items — belongs to the key that
created it, as OpenAI's belong to a project: not to `user`. The key is the caller's bearer
credential: a bridge key in managed mode (configured or console-issued), the Dify app key in
passthrough; when there are no bridge keys (an open bridge) it is whatever key the caller
presents, and every caller that sends none shares one owner. The store keeps a hash of it
(:func:`owner_of`), never the key; responses are compared in constant time, items are looked
up under the caller's hash (another key's simply are not there). Anything owned by another key
is as unknown as a missing one: 404.

**Continuation** (`previous_response_id`):

- A request without `previous_response_id` is an ordinary chat turn (its `input` may carry the
  whole history, which the conversation store recognises as for chat completions).
- A follow-up runs as the Dify `user` stored with the response it names unless it names a
  `user` itself: a Dify conversation belongs to its user.
- Naming the **latest** response of its Dify conversation, for the same app and Dify user,
  continues that conversation: the turn is pinned to it, so Dify gets only the new input.
- Otherwise it **forks**: a new Dify conversation whose query carries that response's history,
  exactly like a regenerated chat turn. That is the case for an older response (Dify cannot
  rewind a conversation), another model's app, another `user` than the stored one, a
  conversation gone at Dify, or an app that keeps no conversations.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import structlog

from bridge.conversations import StoreUnavailable
from bridge.conversations.responses import ResponseStore, StoredResponse
from bridge.errors import BridgeError
from bridge.openai.types import ChatCompletionRequest, ChatMessage
from bridge.routing import ModelRoute
from bridge.translate.request import dify_user
from bridge.translate.responses import (
    History,
    References,
    item_not_found,
    referenced_ids,
    turn_history,
)
from bridge.translate.responses_out import ResponseBuilder

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


def store_unavailable() -> BridgeError:
    return BridgeError(
        503, "The response store is unavailable; try again.", code="store_unavailable"
    )


def owner_of(credential: str | None) -> str:
    """The owner of what a key stores: a hash of the key (SHA-256; keys are long random
    strings, so no salt is needed), or one shared owner for callers without a key. The same
    value the bridge stored before ownership replaced `user` (rows from then stay readable)."""
    if not credential:
        return "bridge-anonymous"
    return "bridge-" + hashlib.sha256(credential.encode()).hexdigest()[:24]


def owns(record: StoredResponse, owner: str) -> bool:
    return hmac.compare_digest(record.owner.encode(), owner.encode())


async def owned_response(
    store: ResponseStore, response_id: str, owner: str, *, param: str | None = None
) -> StoredResponse:
    """The stored response if ``owner`` may use it; else 404 (503 when the store is down)."""
    try:
        record = await store.get(response_id)
    except StoreUnavailable as exc:
        log.warning("response store unavailable", error=str(exc))
        raise store_unavailable() from None
    if record is None or not owns(record, owner):
        raise response_not_found(response_id, param=param)
    return record


class Continuation:
    """How a Responses turn relates to the stored ones."""

    def __init__(
        self, history: History, pinned: str | None, previous: str | None, user: str | None
    ) -> None:
        self.history = history
        self.pinned = pinned
        self.previous = previous
        self.user = user
        """The `user` the turn runs as (None: the request's own, else the key's default)."""


async def continuation(
    store: ResponseStore,
    previous_id: str | None,
    *,
    route: ModelRoute,
    owner: str,
    user: str | None,
) -> Continuation:
    """Where a turn with ``previous_response_id`` goes; ``user`` is the request's `user`."""
    if not previous_id:
        return Continuation([], None, None, user)
    previous = await owned_response(store, previous_id, owner, param="previous_response_id")
    runs_as = dify_user(user, None) if user and user.strip() else previous.user
    pinned = None
    if (
        previous.conversation_id
        and previous.app_id == route.target.identity
        and runs_as == previous.user
    ):
        try:
            head = await store.head(previous.conversation_id)
        except StoreUnavailable:
            head = None  # unknown: forking is always safe, continuing might skip turns
        if head == previous.id:
            pinned = previous.conversation_id
    log.debug("response_continuation", previous=previous_id, continues=pinned is not None)
    return Continuation(previous.history, pinned, previous_id, runs_as)


async def referenced_items(store: ResponseStore, value: Any, *, owner: str) -> References:
    """The stored items the `item_reference` inputs name, as input messages: an output message
    is the assistant message it was; a reasoning item adds nothing. An id that is not one of
    ``owner``'s stored items is a 404 naming it (param `input`), as OpenAI answers."""
    ids = referenced_ids(value)
    if not ids:
        return {}
    try:
        found = await store.items(owner, ids)
    except StoreUnavailable as exc:
        log.warning("response store unavailable", error=str(exc))
        raise store_unavailable() from None
    for item_id in ids:
        if item_id not in found:
            raise item_not_found(item_id)
    return {
        item_id: ChatMessage(role="assistant", content=item.text)
        if item.type == "message"
        else None
        for item_id, item in found.items()
    }


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
