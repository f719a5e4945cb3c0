"""The response store in SQLite: tables of its own in the conversation store's file.

One dedicated thread owns the connection (the event loop never waits on disk); wall-clock
expiry, so entries survive restarts. Tables: ``responses`` (id → record), ``response_heads``
(conversation → its latest response) and ``response_items`` ((owner, item id) → the item's
text). A file written before ``response_items`` existed gets the table and an index of the
items of every live response when it is first opened (in the same transaction that creates the
table, so two processes opening it at once do the work once).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import msgspec

from bridge.conversations.response_records import (
    StoredItem,
    StoredResponse,
    decode_item,
    decode_response,
    items_of,
    lookup_ids,
)
from bridge.conversations.store import StoreUnavailable

T = TypeVar("T")

ITEMS_PER_RESPONSE = 4
"""The item tables keep this many times ``max_entries`` (a response has one to a few items)."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS responses (
        id          TEXT PRIMARY KEY,
        body        BLOB NOT NULL,
        expires_at  REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS responses_by_expiry ON responses (expires_at)",
    """CREATE TABLE IF NOT EXISTS response_heads (
        conversation_id TEXT PRIMARY KEY,
        response_id     TEXT NOT NULL,
        expires_at      REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS response_heads_by_expiry ON response_heads (expires_at)",
    """CREATE TABLE IF NOT EXISTS response_items (
        owner       TEXT NOT NULL,
        id          TEXT NOT NULL,
        response_id TEXT NOT NULL,
        body        BLOB NOT NULL,
        expires_at  REAL NOT NULL,
        PRIMARY KEY (owner, id)
    )""",
    "CREATE INDEX IF NOT EXISTS response_items_by_expiry ON response_items (expires_at)",
    "CREATE INDEX IF NOT EXISTS response_items_by_response ON response_items (response_id)",
)
# (table, its key columns, size bound as a multiple of max_entries) of every pruned table.
_PRUNED = (
    ("responses", "id", 1),
    ("response_heads", "conversation_id", 1),
    ("response_items", "owner, id", ITEMS_PER_RESPONSE),
)
_PRUNE_EVERY = 64
_IN_CHUNK = 500  # ids per `IN (…)`: far below SQLite's bound on parameters


class SqliteResponseStore:
    def __init__(
        self,
        connection: sqlite3.Connection,
        executor: ThreadPoolExecutor,
        *,
        ttl: float,
        max_entries: int,
    ) -> None:
        self._connection = connection
        self._executor = executor
        self._ttl = ttl
        self._max_entries = max_entries
        self._writes = 0
        self._closed = False

    @classmethod
    async def open(cls, path: str, *, ttl: float, max_entries: int) -> SqliteResponseStore:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="response-store")
        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(executor, _connect, path)
        except (sqlite3.Error, OSError) as exc:
            executor.shutdown(wait=False)
            raise StoreUnavailable(
                f"cannot open the SQLite response store at {path}: {exc}"
            ) from exc
        return cls(connection, executor, ttl=ttl, max_entries=max_entries)

    async def get(self, response_id: str) -> StoredResponse | None:
        row = await self._run(
            self._fetch_one,
            "SELECT body FROM responses WHERE id = ? AND expires_at > ?",
            (response_id, time.time()),
        )
        return decode_response(row[0]) if row else None

    async def put(self, record: StoredResponse) -> None:
        def write(connection: sqlite3.Connection) -> None:
            expires_at = time.time() + self._ttl
            connection.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?)",
                (record.id, msgspec.json.encode(record), expires_at),
            )
            if record.conversation_id:
                connection.execute(
                    "INSERT OR REPLACE INTO response_heads VALUES (?, ?, ?)",
                    (record.conversation_id, record.id, expires_at),
                )
            _put_items(connection, record, expires_at)

        await self._run(self._write, write)

    async def head(self, conversation_id: str) -> str | None:
        row = await self._run(
            self._fetch_one,
            "SELECT response_id FROM response_heads WHERE conversation_id = ? AND expires_at > ?",
            (conversation_id, time.time()),
        )
        return str(row[0]) if row else None

    async def items(self, owner: str, item_ids: list[str]) -> dict[str, StoredItem]:
        ids = lookup_ids(item_ids)
        if not ids:
            return {}
        rows = await self._run(self._fetch_items, owner, ids)
        found = {}
        for item_id, body in rows:
            item = decode_item(body)
            if item is not None:
                found[str(item_id)] = item
        return found

    async def delete(self, response_id: str) -> bool:
        deleted = False

        def write(connection: sqlite3.Connection) -> None:
            nonlocal deleted
            cursor = connection.execute("DELETE FROM responses WHERE id = ?", (response_id,))
            deleted = cursor.rowcount > 0
            connection.execute("DELETE FROM response_items WHERE response_id = ?", (response_id,))

        await self._run(self._write, write)
        return deleted

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        with contextlib.suppress(sqlite3.Error):
            await loop.run_in_executor(self._executor, self._connection.close)
        self._executor.shutdown(wait=False)

    async def _run(self, operation: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise StoreUnavailable("the SQLite response store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, operation, *args)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"SQLite response store error: {exc}") from exc

    # Below: on the store's own thread.

    def _fetch_one(self, sql: str, parameters: tuple[object, ...]) -> tuple[object, ...] | None:
        return self._connection.execute(sql, parameters).fetchone()

    def _fetch_items(self, owner: str, ids: list[str]) -> list[tuple[object, ...]]:
        now = time.time()
        rows: list[tuple[object, ...]] = []
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows += self._connection.execute(
                "SELECT id, body FROM response_items"  # noqa: S608 — only placeholders
                f" WHERE owner = ? AND id IN ({marks}) AND expires_at > ?",
                (owner, *chunk, now),
            ).fetchall()
        return rows

    def _write(self, write: Callable[[sqlite3.Connection], None]) -> None:
        with _transaction(self._connection):
            write(self._connection)
        self._writes += 1
        if self._writes % _PRUNE_EVERY == 0:
            self._prune()

    def _prune(self) -> None:
        now = time.time()
        with _transaction(self._connection):
            for table, key, scale in _PRUNED:
                bound = self._max_entries * scale
                self._connection.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,))  # noqa: S608 — constant names
                (count,) = self._connection.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
                if count > bound:
                    self._connection.execute(
                        f"DELETE FROM {table} WHERE ({key}) IN"  # noqa: S608
                        f" (SELECT {key} FROM {table} ORDER BY expires_at LIMIT ?)",
                        (count - bound,),
                    )


def _put_items(connection: sqlite3.Connection, record: StoredResponse, expires_at: float) -> None:
    connection.executemany(
        "INSERT OR REPLACE INTO response_items VALUES (?, ?, ?, ?, ?)",
        [
            (record.owner, item.id, record.id, msgspec.json.encode(item), expires_at)
            for item in items_of(record)
        ],
    )


def _connect(path: str) -> sqlite3.Connection:
    if path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        connection.execute("PRAGMA busy_timeout = 2000")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        with _transaction(connection):
            indexed = _has_table(connection, "response_items")
            had_responses = _has_table(connection, "responses")
            for statement in _SCHEMA:
                connection.execute(statement)
            if had_responses and not indexed:
                _index_items(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _has_table(connection: sqlite3.Connection, name: str) -> bool:
    row = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def _index_items(connection: sqlite3.Connection) -> None:
    """Responses stored by a bridge without the items table: index their items, so that a
    client's next `item_reference` to an answer it got before the upgrade still resolves."""
    rows = connection.execute(
        "SELECT body, expires_at FROM responses WHERE expires_at > ?", (time.time(),)
    )
    for body, expires_at in rows.fetchall():
        record = decode_response(body)
        if record is not None:
            _put_items(connection, record, expires_at)


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
