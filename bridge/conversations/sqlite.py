"""SQLite conversation store: the default, embedded and surviving restarts.

All SQLite work runs on one dedicated thread that owns the store's single connection, so the
event loop never blocks on disk I/O and operations are serialised without a lock. The
database uses WAL mode (readers do not wait for the writer, and several bridge processes on
one host may share the file; ``busy_timeout`` covers their brief write contention) with
``synchronous=NORMAL`` — a lost last write after a power cut only costs one turn of history
carried in the query.

Expiry uses wall-clock time (it must survive restarts): rows older than ``ttl`` are ignored
on read and deleted by pruning. Pruning runs every few writes (at most every 256) and also
trims each table to ``max_entries`` rows, dropping the least recently written — cheap because
``expires_at`` is indexed.
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

from bridge.conversations.store import StoredTurn, StoreUnavailable

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    fingerprint     TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    turn            INTEGER NOT NULL,
    created_at      REAL NOT NULL,
    expires_at      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_expiry ON turns (expires_at);
CREATE TABLE IF NOT EXISTS heads (
    conversation_id TEXT PRIMARY KEY,
    fingerprint     TEXT NOT NULL,
    expires_at      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS heads_by_expiry ON heads (expires_at);
CREATE TABLE IF NOT EXISTS chat_keys (
    key             TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    expires_at      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_keys_by_expiry ON chat_keys (expires_at);
CREATE INDEX IF NOT EXISTS chat_keys_by_conversation ON chat_keys (conversation_id);
"""

# (table, primary key column) of every table pruned by age and size.
_PRUNED_TABLES = (("turns", "fingerprint"), ("heads", "conversation_id"), ("chat_keys", "key"))

_BUSY_TIMEOUT_MS = 2000


class SqliteStore:
    """:class:`~bridge.conversations.store.ConversationStore` in a SQLite file.

    Create it with :meth:`open`.
    """

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
        self._prune_every = max(1, min(256, max_entries // 16))
        self._writes_since_prune = 0
        self._closed = False

    @classmethod
    async def open(cls, path: str | Path, *, ttl: float, max_entries: int) -> SqliteStore:
        """Open (creating if needed) the database at ``path``; ``":memory:"`` also works."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conversation-store")
        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(executor, _connect, str(path))
        except (sqlite3.Error, OSError) as exc:
            executor.shutdown(wait=False)
            raise StoreUnavailable(f"cannot open the SQLite store at {path}: {exc}") from exc
        return cls(connection, executor, ttl=ttl, max_entries=max_entries)

    async def get(self, fingerprint: str) -> StoredTurn | None:
        row = await self._run(
            self._fetch_one,
            "SELECT conversation_id, turn, created_at FROM turns"
            " WHERE fingerprint = ? AND expires_at > ?",
            (fingerprint, time.time()),
        )
        if row is None:
            return None
        conversation_id, turn, created_at = row
        return StoredTurn(conversation_id=conversation_id, turn=turn, created_at=created_at)

    async def put(
        self, fingerprint: str, turn: StoredTurn, *, replacing: str | None = None
    ) -> bool:
        def write(connection: sqlite3.Connection) -> bool:
            expires_at = time.time() + self._ttl
            connection.execute(
                "INSERT OR REPLACE INTO turns VALUES (?, ?, ?, ?, ?)",
                (fingerprint, turn.conversation_id, turn.turn, turn.created_at, expires_at),
            )
            if replacing is not None:
                return _swap_head(
                    connection, turn.conversation_id, replacing, fingerprint, expires_at
                )
            connection.execute(
                "INSERT OR REPLACE INTO heads VALUES (?, ?, ?)",
                (turn.conversation_id, fingerprint, expires_at),
            )
            return True

        return await self._run(self._write, write)

    async def swap_head(self, conversation_id: str, expected: str, new: str) -> bool:
        def write(connection: sqlite3.Connection) -> bool:
            return _swap_head(connection, conversation_id, expected, new, time.time() + self._ttl)

        return await self._run(self._write, write)

    async def head(self, conversation_id: str) -> str | None:
        row = await self._run(
            self._fetch_one,
            "SELECT fingerprint FROM heads WHERE conversation_id = ? AND expires_at > ?",
            (conversation_id, time.time()),
        )
        return None if row is None else row[0]

    async def get_key(self, key: str) -> str | None:
        row = await self._run(
            self._fetch_one,
            "SELECT conversation_id FROM chat_keys WHERE key = ? AND expires_at > ?",
            (key, time.time()),
        )
        return None if row is None else row[0]

    async def put_key(self, key: str, conversation_id: str) -> None:
        def write(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT OR REPLACE INTO chat_keys VALUES (?, ?, ?)",
                (key, conversation_id, time.time() + self._ttl),
            )

        await self._run(self._write, write)

    async def forget_conversation(self, conversation_id: str) -> None:
        def write(connection: sqlite3.Connection) -> None:
            connection.execute("DELETE FROM heads WHERE conversation_id = ?", (conversation_id,))
            connection.execute(
                "DELETE FROM chat_keys WHERE conversation_id = ?", (conversation_id,)
            )

        await self._run(self._write, write)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        with contextlib.suppress(sqlite3.Error):
            await loop.run_in_executor(self._executor, self._connection.close)
        self._executor.shutdown(wait=False)

    async def journal_mode(self) -> str:
        """The connection's journal mode (``"wal"`` for a file database)."""
        row = await self._run(self._fetch_one, "PRAGMA journal_mode", ())
        return str(row[0]) if row else ""

    async def _run(self, operation: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise StoreUnavailable("the SQLite store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, operation, *args)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"SQLite store error: {exc}") from exc

    # Everything below runs on the store's own thread.

    def _fetch_one(self, sql: str, parameters: tuple[object, ...]) -> tuple[object, ...] | None:
        return self._connection.execute(sql, parameters).fetchone()

    def _write(self, write: Callable[[sqlite3.Connection], T]) -> T:
        with _immediate_transaction(self._connection):
            result = write(self._connection)
        self._writes_since_prune += 1
        if self._writes_since_prune >= self._prune_every:
            self._writes_since_prune = 0
            self._prune()
        return result

    def _prune(self) -> None:
        now = time.time()
        with _immediate_transaction(self._connection):
            for table, key_column in _PRUNED_TABLES:
                self._connection.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,))  # noqa: S608 — table names are constants
                (count,) = self._connection.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
                excess = count - self._max_entries
                if excess > 0:
                    self._connection.execute(
                        f"DELETE FROM {table} WHERE {key_column} IN"  # noqa: S608
                        f" (SELECT {key_column} FROM {table} ORDER BY expires_at LIMIT ?)",
                        (excess,),
                    )


def _connect(path: str) -> sqlite3.Connection:
    if path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE so a writer
    # takes the write lock up front instead of failing to upgrade a read lock under contention.
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.executescript(_SCHEMA)
    except BaseException:
        connection.close()
        raise
    return connection


def _swap_head(
    connection: sqlite3.Connection, conversation_id: str, expected: str, new: str, expires_at: float
) -> bool:
    """Compare-and-set of a head, inside the caller's ``BEGIN IMMEDIATE`` transaction: the
    write lock is held from the start, so no other connection (thread or process sharing the
    file) can change the row between the comparison and the update."""
    cursor = connection.execute(
        "UPDATE heads SET fingerprint = ?, expires_at = ?"
        " WHERE conversation_id = ? AND fingerprint = ? AND expires_at > ?",
        (new, expires_at, conversation_id, expected, time.time()),
    )
    return cursor.rowcount == 1


@contextlib.contextmanager
def _immediate_transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
