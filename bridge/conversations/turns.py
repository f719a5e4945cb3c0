"""The store round trips of a request: find the history before it, claim the conversation
it continues, record the turn after.

Both degrade instead of failing: a :class:`~bridge.conversations.store.StoreUnavailable` is
logged as a warning and reported in the result, so the request goes on with the history
carried in the query.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import msgspec
import structlog

from bridge.conversations.fingerprint import (
    NormalisedMessage,
    fingerprint_normalised,
    normalise_message,
)
from bridge.conversations.planner import Lookup
from bridge.conversations.store import ConversationStore, StoredTurn, StoreUnavailable

logger = structlog.get_logger(__name__)


async def look_up_turn(
    store: ConversationStore,
    *,
    app_id: str,
    user: str,
    messages: Sequence[NormalisedMessage],
    chat_key: str | None = None,
) -> Lookup:
    """Find the conversation that produced ``messages[:-1]``, for :func:`plan_turn`.

    ``chat_key`` (from :func:`~bridge.conversations.fingerprint.chat_key`) is tried first;
    when its conversation is not at this history, the fingerprint may still find another
    stored branch, and failing that the keyed conversation is reported so the plan is a fork.
    A client that sends only its new message (nothing but system messages before it) relies
    on its chat key alone: the keyed conversation, if Dify still has it, is reported as being
    at this history so that the plan continues it.
    The store is not consulted when nothing could have been stored: the last message is not
    from the user, or only system messages precede it and there is no chat key.
    """
    prior = messages[:-1]
    prior_fingerprint = fingerprint_normalised(app_id, user, prior)
    not_found = Lookup(fingerprint=prior_fingerprint)
    only_new_message = all(role == "system" for role, _ in prior)
    if not messages or messages[-1][0] != "user" or (only_new_message and chat_key is None):
        return not_found
    try:
        keyed = not_found
        if chat_key is not None:
            keyed_id = await store.get_key(chat_key)
            if keyed_id is not None:
                keyed = Lookup(
                    fingerprint=prior_fingerprint,
                    conversation_id=keyed_id,
                    head=await store.head(keyed_id),
                )
                if only_new_message and keyed.head is not None:
                    return msgspec.structs.replace(
                        keyed, head=prior_fingerprint, stored_head=keyed.head
                    )
                if keyed.head == prior_fingerprint:
                    return keyed
            if only_new_message:
                return not_found
        stored = await store.get(prior_fingerprint)
        if stored is None:
            return keyed
        return Lookup(
            fingerprint=prior_fingerprint,
            conversation_id=stored.conversation_id,
            head=await store.head(stored.conversation_id),
        )
    except StoreUnavailable as exc:
        logger.warning("conversation store unavailable; carrying history", error=str(exc))
        return Lookup(fingerprint=prior_fingerprint, store_down=True)


CLAIM_PREFIX = "claim:"
"""Heads held by a request in flight start with this; fingerprints are hex, never like it."""

# A head nobody's lookup can match: what a lost claim reports, so that the plan forks.
_CLAIMED_ELSEWHERE = CLAIM_PREFIX + "elsewhere"


async def claim_turn(store: ConversationStore, lookup: Lookup) -> tuple[Lookup, str | None]:
    """Claim the conversation a ``hit`` lookup continues, before Dify is called.

    Swaps the conversation's head from the state the lookup saw to a fresh claim token
    (compare-and-set). Returns the lookup and the token to pass to :func:`record_turn`; when
    another request (on any replica) moved the head first, the lookup comes back with a head
    that is not its fingerprint and no token — planned again, that is a fork, so two requests
    continuing the same state never both continue one Dify conversation. A store failure
    comes back as ``store_down``.

    A claim whose request then fails stays the head until the next turn of that conversation
    is stored or it expires: the same history sent again forks instead of continuing. That
    is the safe side — Dify may already hold part of the failed turn.
    """
    if lookup.conversation_id is None:
        return lookup, None
    expected = lookup.stored_head or lookup.head
    if expected is None:
        return lookup, None
    claim = CLAIM_PREFIX + uuid.uuid4().hex
    try:
        claimed = await store.swap_head(lookup.conversation_id, expected, claim)
    except StoreUnavailable as exc:
        logger.warning("conversation store unavailable; carrying history", error=str(exc))
        return msgspec.structs.replace(lookup, store_down=True), None
    if not claimed:
        logger.info("conversation_claimed_elsewhere", conversation_id=lookup.conversation_id)
        return msgspec.structs.replace(lookup, head=_CLAIMED_ELSEWHERE, stored_head=None), None
    return lookup, claim


async def record_turn(
    store: ConversationStore,
    *,
    app_id: str,
    user: str,
    messages: Sequence[NormalisedMessage],
    answer: str,
    conversation_id: str,
    chat_key: str | None = None,
    claim: str | None = None,
) -> bool:
    """Remember that ``messages`` + ``answer`` is now the state of ``conversation_id``.

    ``messages`` are all the normalised request messages (system ones included), ``answer``
    the assistant text as sent to the client. ``claim`` is the token :func:`claim_turn` gave
    a continued conversation: the head then moves only if the claim still holds it (it may
    have been forgotten meanwhile). Returns ``False`` if the store was unavailable.
    """
    state = [*messages, normalise_message({"role": "assistant", "content": answer})]
    turn = StoredTurn(
        conversation_id=conversation_id,
        turn=sum(1 for role, _ in state if role == "user"),
        created_at=time.time(),
    )
    try:
        moved = await store.put(fingerprint_normalised(app_id, user, state), turn, replacing=claim)
        if not moved:
            logger.info("conversation_head_not_moved", conversation_id=conversation_id)
        if chat_key is not None:
            await store.put_key(chat_key, conversation_id)
    except StoreUnavailable as exc:
        logger.warning("conversation store unavailable; turn not recorded", error=str(exc))
        return False
    return True
