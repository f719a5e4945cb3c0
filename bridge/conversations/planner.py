"""Decide how one OpenAI request becomes one Dify chat message: ``plan_turn``.

Pure: the caller looks the history up in the store first (see
:func:`~bridge.conversations.turns.look_up_turn`) and passes what it found.

History modes (operator's choice):

- ``conversation`` (default): continue the Dify conversation that produced this history when
  the store knows it, else start a new one and carry the history in the query;
- ``flatten``: always a new conversation with the history carried in the query (the way of
  dify2openai: no Dify memory is used);
- ``last``: only the last user message, in a new conversation, history dropped — for apps
  that need no context, or background requests (titles, tags) that must not touch the
  user's conversation.

Reasons a plan gives (``TurnPlan.reason``), in the order they are decided:

- ``last`` — mode ``last``: query = the last user message; no conversation. With no user
  message at all, the whole history is carried instead so that the query is not empty.
- ``flatten`` — mode ``flatten``: new conversation, history carried.
- ``pinned`` — the client named a conversation: continue it with the last user message (or,
  when the last message is not from the user, the messages from the last user message on,
  rendered).
- ``trailing`` — the last message is not from the user (an assistant prefill, a tool
  result): Dify cannot continue from such a message, so a new conversation starts with the
  whole history carried, ending with that message.
- ``new`` — nothing but system messages before the user message: new conversation — unless
  the lookup found the client's chat key bound to a live conversation (a client that sends
  only its new message and names its chat with ``X-Conversation-Key``): then ``hit``.
- ``hit`` — the store knows this history and it is the latest state of its conversation:
  continue that conversation with only the last user message.
- ``fork`` — the store knows this history but its conversation has moved on since (the
  client regenerated an answer or edited an earlier message). Dify cannot rewind a
  conversation, so a new one starts with the history carried.
- ``miss`` — the store does not know this history (expired, edited, written by a bridge
  with another store, or its conversation was forgotten): new conversation, history carried.
- ``store_down`` — the store failed: new conversation, history carried; never a failed
  request.

System messages go into carried history unless ``system_in_query=False`` (when the caller
maps the system prompt to a Dify input variable instead). A continued conversation gets no
system text: Dify already has it from the turn that started the conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

from bridge.conversations.fingerprint import NormalisedMessage
from bridge.conversations.history import carries_history, render_history

HistoryMode = Literal["conversation", "flatten", "last"]
TurnReason = Literal[
    "last", "flatten", "pinned", "trailing", "new", "hit", "fork", "miss", "store_down"
]


class Lookup(msgspec.Struct, frozen=True, kw_only=True):
    """What the store says about the history before the new message."""

    fingerprint: str
    """Fingerprint of that history (``messages[:-1]``)."""
    conversation_id: str | None = None
    """The conversation that history was stored under (by fingerprint or chat key)."""
    head: str | None = None
    """Fingerprint of that conversation's latest stored state; ``None`` if forgotten."""
    stored_head: str | None = None
    """The head as read from the store when it differs from ``head``: a lookup by chat key
    alone counts as being at the head whatever it is, and a claim compares against this."""
    store_down: bool = False
    """The store raised :class:`~bridge.conversations.store.StoreUnavailable`."""


class TurnPlan(msgspec.Struct, frozen=True, kw_only=True):
    """The Dify call for one request."""

    query: str
    conversation_id: str | None
    """The conversation to continue; ``None`` starts a new one."""
    reason: TurnReason
    carried_history: bool
    """The query is the rendered history template, not just the new message."""
    remember: bool
    """Store the finished turn afterwards (``conversation`` mode only)."""


def plan_turn(
    messages: Sequence[NormalisedMessage],
    *,
    history: HistoryMode = "conversation",
    lookup: Lookup | None = None,
    pinned_conversation_id: str | None = None,
    system_in_query: bool = True,
) -> TurnPlan:
    """Plan the Dify call for normalised request messages (rules in the module docstring).

    ``lookup`` is ``None`` when no lookup was made (treated as a miss). A pinned conversation
    applies in ``conversation`` mode only: the other modes never continue a conversation.
    """
    if not messages:
        raise ValueError("a chat request needs at least one message")
    # With only system messages there is nothing else to send, so they go in regardless.
    shown = [m for m in messages if system_in_query or m[0] != "system"] or list(messages)
    last_user = _last_user_index(messages)

    if history == "last":
        if last_user is None:
            return _new_with_history(shown, "last", remember=False)
        return TurnPlan(
            query=messages[last_user][1],
            conversation_id=None,
            reason="last",
            carried_history=False,
            remember=False,
        )
    if history == "flatten":
        return _new_with_history(shown, "flatten", remember=False)

    if pinned_conversation_id:
        if last_user == len(messages) - 1:
            query, carried = messages[-1][1], False
        else:
            from_last_user = messages[last_user or 0 :]
            query, carried = render_history(from_last_user), carries_history(from_last_user)
        return TurnPlan(
            query=query,
            conversation_id=pinned_conversation_id,
            reason="pinned",
            carried_history=carried,
            remember=True,
        )
    if last_user != len(messages) - 1:
        return _new_with_history(shown, "trailing")
    if all(role == "system" for role, _ in messages[:-1]) and not _at_head(lookup):
        return _new_with_history(shown, "new")
    return _plan_from_lookup(messages[-1][1], shown, lookup)


def _plan_from_lookup(
    new_message: str, shown: list[NormalisedMessage], lookup: Lookup | None
) -> TurnPlan:
    if lookup is not None and lookup.store_down:
        return _new_with_history(shown, "store_down")
    if lookup is None or lookup.conversation_id is None or lookup.head is None:
        return _new_with_history(shown, "miss")
    if lookup.head != lookup.fingerprint:
        return _new_with_history(shown, "fork")
    return TurnPlan(
        query=new_message,
        conversation_id=lookup.conversation_id,
        reason="hit",
        carried_history=False,
        remember=True,
    )


def _new_with_history(
    shown: list[NormalisedMessage], reason: TurnReason, *, remember: bool = True
) -> TurnPlan:
    return TurnPlan(
        query=render_history(shown),
        conversation_id=None,
        reason=reason,
        carried_history=carries_history(shown),
        remember=remember,
    )


def _at_head(lookup: Lookup | None) -> bool:
    """The lookup names a conversation whose latest state is the looked-up history."""
    return (
        lookup is not None
        and not lookup.store_down
        and lookup.conversation_id is not None
        and lookup.head == lookup.fingerprint
    )


def _last_user_index(messages: Sequence[NormalisedMessage]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index][0] == "user":
            return index
    return None
