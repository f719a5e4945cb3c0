"""The conversation store: where fingerprints of finished turns map to Dify conversations.

Three kinds of entry, each expiring ``ttl`` seconds after it was last written:

- **turn**: fingerprint of a conversation state → :class:`StoredTurn` (its Dify conversation);
- **head**: Dify conversation id → fingerprint of the latest state stored for it. A lookup
  whose fingerprint is not the head of its conversation means the client went back in time
  (regenerate, edited message): the Dify conversation has moved on and cannot be rewound.
  Heads only move by compare-and-set when a stored conversation is continued: the request
  first *claims* the head (:meth:`ConversationStore.swap_head` from the state it continues
  to a claim token), then ``put`` replaces that claim with the new state. Of two requests
  continuing the same state at the same instant, on any replica, exactly one claims it; the
  other sees a moved head and forks (issue 13);
- **chat key**: a client's own chat id (``X-Conversation-Key``, scoped by
  :func:`~bridge.conversations.fingerprint.chat_key`) → Dify conversation id.

Every failure of the backing service surfaces as :class:`StoreUnavailable`; the caller then
carries the history in the query instead, so a broken store never fails a request.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import msgspec


class StoreUnavailable(Exception):
    """The store cannot be reached or used right now (I/O error, dead Redis, closed store)."""


class StoredTurn(msgspec.Struct, frozen=True, kw_only=True):
    """What the bridge remembers about one completed turn."""

    conversation_id: str
    turn: int
    """How many user messages the fingerprinted history holds (1 after the first exchange)."""
    created_at: float
    """Unix time the turn was stored."""


@runtime_checkable
class ConversationStore(Protocol):
    async def get(self, fingerprint: str) -> StoredTurn | None:
        """The turn stored under ``fingerprint``, or ``None`` (never stored or expired)."""
        ...

    async def put(
        self, fingerprint: str, turn: StoredTurn, *, replacing: str | None = None
    ) -> bool:
        """Store a turn and make ``fingerprint`` the head of ``turn.conversation_id``.

        With ``replacing``, the head moves only if it still is ``replacing`` (a claim taken
        with :meth:`swap_head`); the turn is stored either way. Turn and head are written
        atomically. Returns whether the head moved.
        """
        ...

    async def swap_head(self, conversation_id: str, expected: str, new: str) -> bool:
        """Compare-and-set: make ``new`` the head if the head is ``expected`` (atomic, also
        across processes sharing the store). Returns whether it was swapped."""
        ...

    async def head(self, conversation_id: str) -> str | None:
        """Fingerprint of the latest state stored for ``conversation_id``."""
        ...

    async def get_key(self, key: str) -> str | None:
        """Conversation id bound to a client chat key."""
        ...

    async def put_key(self, key: str, conversation_id: str) -> None:
        """Bind a client chat key to a conversation id (rebinding replaces the old one)."""
        ...

    async def forget_conversation(self, conversation_id: str) -> None:
        """Drop the head and the chat keys of a conversation Dify no longer knows.

        Turns stored under it may linger until they expire; without a head they are never
        continued (see :func:`~bridge.conversations.planner.plan_turn`).
        """
        ...

    async def close(self) -> None:
        """Release connections and threads; later calls raise :class:`StoreUnavailable`."""
        ...


async def open_store(url: str, *, ttl: float, max_entries: int) -> ConversationStore:
    """Open the store a URL names.

    - ``memory://`` — in this process only (tests, single process, no persistence);
    - ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (SQLAlchemy's
      convention: the path is what follows the third slash), ``sqlite:///:memory:``, or a bare
      file path such as ``data/conversations.db`` — the default kind;
    - ``redis://[user:password@]host:port/db`` or ``rediss://…`` — shared by replicas.

    ``ttl`` is in seconds. ``max_entries`` bounds the memory and SQLite stores; Redis relies on
    the TTL and its own ``maxmemory``. Raises :class:`ValueError` for an unknown URL and
    :class:`StoreUnavailable` when a SQLite file cannot be opened; Redis connects lazily.
    """
    # Implementations are imported here so that a deployment using one backend never loads
    # the others (and they can import this module for the shared types).
    scheme, separator, rest = url.partition("://")
    if not separator:
        from bridge.conversations.sqlite import SqliteStore

        return await SqliteStore.open(url, ttl=ttl, max_entries=max_entries)
    scheme = scheme.lower()
    if scheme == "memory":
        from bridge.conversations.memory import MemoryStore

        return MemoryStore(ttl=ttl, max_entries=max_entries)
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise ValueError(
                f"a SQLite store URL needs a path: sqlite:///path/to/file.db, not {url!r}"
            )
        from bridge.conversations.sqlite import SqliteStore

        return await SqliteStore.open(rest[1:], ttl=ttl, max_entries=max_entries)
    if scheme in {"redis", "rediss"}:
        from bridge.conversations.redis_store import RedisStore

        return RedisStore.from_url(url, ttl=ttl)
    raise ValueError(
        f"unknown conversation store URL {url!r}: use memory://, sqlite:///…, redis://…"
    )
