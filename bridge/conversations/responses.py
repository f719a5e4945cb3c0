"""The response store: Responses API ids → the Dify conversation behind them.

`previous_response_id` is the one OpenAI API whose state matches Dify's, so each stored
response remembers its owner (a hash of the key that created it), the app, the Dify user, the
Dify conversation and message it came from, the user/assistant text of its chain (for forks)
and the `Response` object itself (for `GET`). Its output items are kept too, per owner, so that
an `item_reference` input turns back into the assistant message it names. Each conversation
also has a **head**: its latest stored response. A follow-up to the head continues the
conversation; a follow-up to an older response is a fork.

Backends follow the conversation store's URL (``settings.store``) and TTL rules: ``memory://``
(here), SQLite (its own tables in the same file, `response_sqlite`) and Redis (its own keys,
`response_redis`). Entries expire ``ttl`` seconds after they were written; memory and SQLite
also keep at most ``max_entries`` responses (and :data:`ITEMS_PER_RESPONSE` times as many
items). Every backend failure surfaces as :class:`~bridge.conversations.store.StoreUnavailable`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol, TypeVar

from bridge.conversations.response_records import (
    StoredItem,
    StoredResponse,
    items_of,
    lookup_ids,
)
from bridge.conversations.response_redis import RedisResponseStore
from bridge.conversations.response_sqlite import ITEMS_PER_RESPONSE, SqliteResponseStore
from bridge.conversations.store import StoreUnavailable

__all__ = [
    "ITEMS_PER_RESPONSE",
    "MemoryResponseStore",
    "ResponseStore",
    "StoredItem",
    "StoredResponse",
    "open_response_store",
]

K = TypeVar("K")
T = TypeVar("T")


class ResponseStore(Protocol):
    async def get(self, response_id: str) -> StoredResponse | None: ...

    async def put(self, record: StoredResponse) -> None:
        """Store it and its output items and, when it has a conversation, make it that
        conversation's head."""
        ...

    async def head(self, conversation_id: str) -> str | None: ...

    async def items(self, owner: str, item_ids: list[str]) -> dict[str, StoredItem]:
        """The output items of ``owner``'s stored responses among ``item_ids``; an id not in
        the answer is unknown, expired, deleted or another owner's."""
        ...

    async def delete(self, response_id: str) -> bool:
        """Remove the response and its items (the head, if any, simply expires)."""
        ...

    async def close(self) -> None: ...


async def open_response_store(url: str, *, ttl: float, max_entries: int) -> ResponseStore:
    """The response store beside the conversation store named by ``url`` (same URL forms as
    :func:`~bridge.conversations.store.open_store`)."""
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if separator and scheme == "memory":
        return MemoryResponseStore(ttl=ttl, max_entries=max_entries)
    if separator and scheme in {"redis", "rediss"}:
        store = RedisResponseStore.from_url(url, ttl=ttl)
        store.start_backfill()
        return store
    if separator and scheme != "sqlite":
        raise ValueError(f"unknown store URL {url!r}: use memory://, sqlite:///…, redis://…")
    path = rest[1:] if separator else url
    return await SqliteResponseStore.open(path, ttl=ttl, max_entries=max_entries)


class MemoryResponseStore:
    """In this process: dicts with expiry times, least recently written dropped first."""

    def __init__(self, *, ttl: float, max_entries: int) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._records: OrderedDict[str, tuple[float, StoredResponse]] = OrderedDict()
        self._heads: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._items: OrderedDict[tuple[str, str], tuple[float, StoredItem]] = OrderedDict()
        self._closed = False

    async def get(self, response_id: str) -> StoredResponse | None:
        return self._read(self._records, response_id)

    async def put(self, record: StoredResponse) -> None:
        self._write(self._records, record.id, record)
        if record.conversation_id:
            self._write(self._heads, record.conversation_id, record.id)
        for item in items_of(record):
            self._write(self._items, (record.owner, item.id), item, ITEMS_PER_RESPONSE)

    async def head(self, conversation_id: str) -> str | None:
        return self._read(self._heads, conversation_id)

    async def items(self, owner: str, item_ids: list[str]) -> dict[str, StoredItem]:
        found = {}
        for item_id in lookup_ids(item_ids):
            item = self._read(self._items, (owner, item_id))
            if item is not None:
                found[item_id] = item
        return found

    async def delete(self, response_id: str) -> bool:
        self._check_open()
        entry = self._records.pop(response_id, None)
        if entry is None:
            return False
        record = entry[1]
        for item in items_of(record):
            self._items.pop((record.owner, item.id), None)
        return True

    async def close(self) -> None:
        self._closed = True

    def _read(self, table: OrderedDict[K, tuple[float, T]], key: K) -> T | None:
        self._check_open()
        entry = table.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del table[key]
            return None
        return entry[1]

    def _write(
        self, table: OrderedDict[K, tuple[float, T]], key: K, value: T, scale: int = 1
    ) -> None:
        self._check_open()
        table[key] = (time.monotonic() + self._ttl, value)
        table.move_to_end(key)
        while len(table) > self._max_entries * scale:
            table.popitem(last=False)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the memory response store is closed")
