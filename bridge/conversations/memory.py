"""In-process conversation store: dicts with a TTL and an LRU size bound.

For tests and single-process deployments that do not need to survive a restart. Every
operation runs without awaiting, so it is atomic with respect to other coroutines.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

from bridge.conversations.store import StoredTurn, StoreUnavailable

V = TypeVar("V")


class _ExpiringLRU(Generic[V]):
    """Mapping whose entries expire ``ttl`` seconds after their last write.

    Holds at most ``max_entries``; beyond that the least recently used entry goes first.
    """

    def __init__(self, *, ttl: float, max_entries: int) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        self._entries[key] = (time.monotonic() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def pop(self, key: str) -> None:
        self._entries.pop(key, None)

    def keys_with_value(self, value: V) -> list[str]:
        return [key for key, (_, stored) in self._entries.items() if stored == value]

    def __len__(self) -> int:
        return len(self._entries)


class MemoryStore:
    """:class:`~bridge.conversations.store.ConversationStore` held in this process."""

    def __init__(self, *, ttl: float, max_entries: int) -> None:
        self._turns: _ExpiringLRU[StoredTurn] = _ExpiringLRU(ttl=ttl, max_entries=max_entries)
        self._heads: _ExpiringLRU[str] = _ExpiringLRU(ttl=ttl, max_entries=max_entries)
        self._keys: _ExpiringLRU[str] = _ExpiringLRU(ttl=ttl, max_entries=max_entries)
        self._closed = False

    async def get(self, fingerprint: str) -> StoredTurn | None:
        self._check_open()
        return self._turns.get(fingerprint)

    async def put(
        self, fingerprint: str, turn: StoredTurn, *, replacing: str | None = None
    ) -> bool:
        self._check_open()
        self._turns.put(fingerprint, turn)
        if replacing is not None and self._heads.get(turn.conversation_id) != replacing:
            return False
        self._heads.put(turn.conversation_id, fingerprint)
        return True

    async def swap_head(self, conversation_id: str, expected: str, new: str) -> bool:
        # No await between the read and the write: atomic for this event loop.
        self._check_open()
        if self._heads.get(conversation_id) != expected:
            return False
        self._heads.put(conversation_id, new)
        return True

    async def head(self, conversation_id: str) -> str | None:
        self._check_open()
        return self._heads.get(conversation_id)

    async def get_key(self, key: str) -> str | None:
        self._check_open()
        return self._keys.get(key)

    async def put_key(self, key: str, conversation_id: str) -> None:
        self._check_open()
        self._keys.put(key, conversation_id)

    async def forget_conversation(self, conversation_id: str) -> None:
        self._check_open()
        self._heads.pop(conversation_id)
        # A linear scan: forgetting happens only when Dify reports a conversation gone.
        for key in self._keys.keys_with_value(conversation_id):
            self._keys.pop(key)

    async def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the memory store is closed")
