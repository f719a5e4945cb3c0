"""The response store: Responses API ids → the Dify conversation behind them.

`previous_response_id` is the one OpenAI API whose state matches Dify's, so each stored
response remembers the app, the Dify user, the Dify conversation and message it came from, the
user/assistant text of its chain (for forks) and the `Response` object itself (for `GET`).
Each conversation also has a **head**: its latest stored response. A follow-up to the head
continues the conversation; a follow-up to an older response is a fork.

Backends follow the conversation store's URL (``settings.store``) and TTL rules: ``memory://``,
SQLite (its own tables in the same file) and Redis (its own keys). Entries expire ``ttl``
seconds after they were written; memory and SQLite also keep at most ``max_entries``. Every
backend failure surfaces as :class:`~bridge.conversations.store.StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

import msgspec
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bridge.conversations.redis_store import DEFAULT_TIMEOUT, MAX_CONNECTIONS, NAMESPACE, POOL_WAIT
from bridge.conversations.store import StoreUnavailable
from bridge.openai.responses import ResponseObject

T = TypeVar("T")


class StoredResponse(msgspec.Struct, kw_only=True):
    id: str
    owner: str
    """Who may read or delete it: the Dify user derived from the caller's key."""
    app_id: str
    user: str
    """The Dify `user` of the turn: a follow-up must run as the same user."""
    conversation_id: str | None
    """None for apps without conversations (workflow, completion) and for failed turns."""
    message_id: str | None
    history: list[tuple[str, str]]
    response: ResponseObject


_decoder = msgspec.json.Decoder(StoredResponse)


class ResponseStore(Protocol):
    async def get(self, response_id: str) -> StoredResponse | None: ...

    async def put(self, record: StoredResponse) -> None:
        """Store it and, when it has a conversation, make it that conversation's head."""
        ...

    async def head(self, conversation_id: str) -> str | None: ...

    async def delete(self, response_id: str) -> bool: ...

    async def close(self) -> None: ...


async def open_response_store(url: str, *, ttl: float, max_entries: int) -> ResponseStore:
    """The response store beside the conversation store named by ``url`` (same URL forms as
    :func:`~bridge.conversations.store.open_store`)."""
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if separator and scheme == "memory":
        return MemoryResponseStore(ttl=ttl, max_entries=max_entries)
    if separator and scheme in {"redis", "rediss"}:
        return RedisResponseStore.from_url(url, ttl=ttl)
    if separator and scheme != "sqlite":
        raise ValueError(f"unknown store URL {url!r}: use memory://, sqlite:///…, redis://…")
    path = rest[1:] if separator else url
    return await SqliteResponseStore.open(path, ttl=ttl, max_entries=max_entries)


class MemoryResponseStore:
    """In this process: a dict with expiry times, least recently written dropped first."""

    def __init__(self, *, ttl: float, max_entries: int) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._records: OrderedDict[str, tuple[float, StoredResponse]] = OrderedDict()
        self._heads: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._closed = False

    async def get(self, response_id: str) -> StoredResponse | None:
        return self._read(self._records, response_id)

    async def put(self, record: StoredResponse) -> None:
        self._write(self._records, record.id, record)
        if record.conversation_id:
            self._write(self._heads, record.conversation_id, record.id)

    async def head(self, conversation_id: str) -> str | None:
        return self._read(self._heads, conversation_id)

    async def delete(self, response_id: str) -> bool:
        self._check_open()
        return self._records.pop(response_id, None) is not None

    async def close(self) -> None:
        self._closed = True

    def _read(self, table: OrderedDict[str, tuple[float, T]], key: str) -> T | None:
        self._check_open()
        entry = table.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del table[key]
            return None
        return entry[1]

    def _write(self, table: OrderedDict[str, tuple[float, T]], key: str, value: T) -> None:
        self._check_open()
        table[key] = (time.monotonic() + self._ttl, value)
        table.move_to_end(key)
        while len(table) > self._max_entries:
            table.popitem(last=False)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the memory response store is closed")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id          TEXT PRIMARY KEY,
    body        BLOB NOT NULL,
    expires_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_by_expiry ON responses (expires_at);
CREATE TABLE IF NOT EXISTS response_heads (
    conversation_id TEXT PRIMARY KEY,
    response_id     TEXT NOT NULL,
    expires_at      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS response_heads_by_expiry ON response_heads (expires_at);
"""
_PRUNED = (("responses", "id"), ("response_heads", "conversation_id"))
_PRUNE_EVERY = 64


class SqliteResponseStore:
    """Tables of their own in the conversation store's SQLite file, on one dedicated thread
    (the event loop never waits on disk). Wall-clock expiry, so entries survive restarts."""

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
        return _decode(row[0]) if row else None

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

        await self._run(self._write, write)

    async def head(self, conversation_id: str) -> str | None:
        row = await self._run(
            self._fetch_one,
            "SELECT response_id FROM response_heads WHERE conversation_id = ? AND expires_at > ?",
            (conversation_id, time.time()),
        )
        return str(row[0]) if row else None

    async def delete(self, response_id: str) -> bool:
        deleted = False

        def write(connection: sqlite3.Connection) -> None:
            nonlocal deleted
            cursor = connection.execute("DELETE FROM responses WHERE id = ?", (response_id,))
            deleted = cursor.rowcount > 0

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

    def _write(self, write: Callable[[sqlite3.Connection], None]) -> None:
        with _transaction(self._connection):
            write(self._connection)
        self._writes += 1
        if self._writes % _PRUNE_EVERY == 0:
            self._prune()

    def _prune(self) -> None:
        now = time.time()
        with _transaction(self._connection):
            for table, key in _PRUNED:
                self._connection.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,))  # noqa: S608 — constant names
                (count,) = self._connection.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
                if count > self._max_entries:
                    self._connection.execute(
                        f"DELETE FROM {table} WHERE {key} IN"  # noqa: S608
                        f" (SELECT {key} FROM {table} ORDER BY expires_at LIMIT ?)",
                        (count - self._max_entries,),
                    )


def _connect(path: str) -> sqlite3.Connection:
    if path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        connection.execute("PRAGMA busy_timeout = 2000")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.executescript(_SCHEMA)
    except BaseException:
        connection.close()
        raise
    return connection


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _decode(raw: object) -> StoredResponse | None:
    try:
        return _decoder.decode(raw)  # type: ignore[arg-type]
    except (msgspec.DecodeError, TypeError):
        # Written by an incompatible bridge version: as good as absent.
        return None


class RedisResponseStore:
    """Keys ``dify-bridge:response:<id>`` and ``dify-bridge:response-head:<conversation>``,
    each with the TTL; the size bound is Redis's own ``maxmemory`` (as for conversations)."""

    def __init__(self, client: redis.Redis, *, ttl: float, namespace: str = NAMESPACE) -> None:
        self._client = client
        self._ttl_ms = max(1, round(ttl * 1000))
        self._namespace = namespace
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, ttl: float) -> RedisResponseStore:
        # The conversation store's pool rules: short timeouts, one retry, bounded connections.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT,
            decode_responses=True,
            socket_timeout=DEFAULT_TIMEOUT,
            socket_connect_timeout=DEFAULT_TIMEOUT,
            retry=Retry(NoBackoff(), retries=1),
        )
        return cls(redis.Redis.from_pool(pool), ttl=ttl)

    async def get(self, response_id: str) -> StoredResponse | None:
        with self._unavailable_on_error():
            raw = await self._client.get(self._key(response_id))
        return _decode(raw) if raw is not None else None

    async def put(self, record: StoredResponse) -> None:
        with self._unavailable_on_error():
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self._key(record.id), msgspec.json.encode(record), px=self._ttl_ms)
                if record.conversation_id:
                    pipe.set(self._head_key(record.conversation_id), record.id, px=self._ttl_ms)
                await pipe.execute()

    async def head(self, conversation_id: str) -> str | None:
        with self._unavailable_on_error():
            return await self._client.get(self._head_key(conversation_id))

    async def delete(self, response_id: str) -> bool:
        with self._unavailable_on_error():
            return bool(await self._client.delete(self._key(response_id)))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

    @contextlib.contextmanager
    def _unavailable_on_error(self) -> Iterator[None]:
        if self._closed:
            raise StoreUnavailable("the Redis response store is closed")
        try:
            yield
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"Redis response store error: {exc!r}") from exc

    def _key(self, response_id: str) -> str:
        return f"{self._namespace}:response:{response_id}"

    def _head_key(self, conversation_id: str) -> str:
        return f"{self._namespace}:response-head:{conversation_id}"
