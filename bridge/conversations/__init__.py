"""Map OpenAI chat histories onto Dify conversations.

Per request: normalise the messages, :func:`look_up_turn` in the store, :func:`plan_turn`,
call Dify with the plan, then :func:`record_turn`. Stores come from :func:`open_store`.
"""

from bridge.conversations.fingerprint import (
    NormalisedMessage,
    chat_key,
    fingerprint,
    fingerprint_normalised,
    normalise_message,
    normalise_messages,
)
from bridge.conversations.history import carries_history, render_history
from bridge.conversations.planner import HistoryMode, Lookup, TurnPlan, TurnReason, plan_turn
from bridge.conversations.store import (
    ConversationStore,
    StoredTurn,
    StoreUnavailable,
    open_store,
)
from bridge.conversations.turns import claim_turn, look_up_turn, record_turn

__all__ = [
    "ConversationStore",
    "HistoryMode",
    "Lookup",
    "NormalisedMessage",
    "StoreUnavailable",
    "StoredTurn",
    "TurnPlan",
    "TurnReason",
    "carries_history",
    "chat_key",
    "claim_turn",
    "fingerprint",
    "fingerprint_normalised",
    "look_up_turn",
    "normalise_message",
    "normalise_messages",
    "open_store",
    "plan_turn",
    "record_turn",
    "render_history",
]
