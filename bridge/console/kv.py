"""The console's storage: a small key-value interface over the bridge's store.

SQLite (the default store) gets a file of its own beside the conversations, `console.db` in
the data directory, shared by all workers of the host; Redis (BRIDGE_STORE=redis://…) gets
keys under `bridge:console:` in the same Redis, shared by every replica. Saved models, bridge
keys, token usage, sessions and the version counters that replicas poll all live here.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import aiosqlite
from litestar.stores.base import Store
from redis.asyncio import Redis

_PREFIX = "bridge:console:"


class KV(Protocol):
    async def get(self, ns: str, key: str) -> bytes | None: ...
    async def put(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> None: ...
    async def delete(self, ns: str, key: str) -> None: ...
    async def items(self, ns: str) -> dict[str, bytes]: ...
    async def incr(self, ns: str, key: str, by: int = 1, ttl: float | None = None) -> int: ...
    async def close(self) -> None: ...


def _bytes(value: object) -> bytes:
    # Counters are SQLite integers; bytes(11) would be eleven zero bytes.
    return str(value).encode() if isinstance(value, int) else bytes(value)  # type: ignore[arg-type]


class SqliteKV:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path | None) -> SqliteKV:
        if path is not None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = await aiosqlite.connect(path or ":memory:", isolation_level=None)
        # WAL: readers in other workers do not wait for a writer; busy_timeout: writers wait.
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA busy_timeout=5000")
        await db.execute(
            "CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, "
            "value BLOB NOT NULL, expires REAL, PRIMARY KEY (ns, key))"
        )
        if path is not None:
            os.chmod(path, 0o600)
        return cls(db)

    async def get(self, ns: str, key: str) -> bytes | None:
        async with self._db.execute(
            "SELECT value FROM kv WHERE ns=? AND key=? AND (expires IS NULL OR expires>?)",
            (ns, key, time.time()),
        ) as cursor:
            row = await cursor.fetchone()
        return _bytes(row[0]) if row else None

    async def put(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> None:
        expires = time.time() + ttl if ttl is not None else None
        await self._db.execute(
            "INSERT OR REPLACE INTO kv (ns, key, value, expires) VALUES (?, ?, ?, ?)",
            (ns, key, value, expires),
        )

    async def delete(self, ns: str, key: str) -> None:
        await self._db.execute("DELETE FROM kv WHERE ns=? AND key=?", (ns, key))

    async def items(self, ns: str) -> dict[str, bytes]:
        now = time.time()
        await self._db.execute("DELETE FROM kv WHERE ns=? AND expires<=?", (ns, now))
        async with self._db.execute("SELECT key, value FROM kv WHERE ns=?", (ns,)) as cursor:
            return {key: _bytes(value) async for key, value in cursor}

    async def incr(self, ns: str, key: str, by: int = 1, ttl: float | None = None) -> int:
        expires = time.time() + ttl if ttl is not None else None
        async with self._db.execute(
            "INSERT INTO kv (ns, key, value, expires) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (ns, key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value "
            "RETURNING value",
            (ns, key, by, expires),
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else by

    async def close(self) -> None:
        await self._db.close()


class RedisKV:
    """One Redis hash per namespace; values with a ttl are plain keys (hash fields cannot
    expire on older Redis)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def _hash(self, ns: str) -> str:
        return f"{_PREFIX}{ns}"

    def _single(self, ns: str, key: str) -> str:
        return f"{_PREFIX}{ns}:{key}"

    async def get(self, ns: str, key: str) -> bytes | None:
        value = await self._redis.hget(self._hash(ns), key)
        if value is None:
            value = await self._redis.get(self._single(ns, key))
        return value

    async def put(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> None:
        if ttl is None:
            await self._redis.hset(self._hash(ns), key, value)
        else:
            await self._redis.set(self._single(ns, key), value, px=max(1, int(ttl * 1000)))

    async def delete(self, ns: str, key: str) -> None:
        await self._redis.hdel(self._hash(ns), key)
        await self._redis.delete(self._single(ns, key))

    async def items(self, ns: str) -> dict[str, bytes]:
        found = await self._redis.hgetall(self._hash(ns))
        return {k.decode(): v for k, v in found.items()}

    async def incr(self, ns: str, key: str, by: int = 1, ttl: float | None = None) -> int:
        name = self._single(ns, key)
        value = int(await self._redis.incrby(name, by))
        if ttl is not None and value == by:
            await self._redis.pexpire(name, int(ttl * 1000))
        return value

    async def close(self) -> None:
        await self._redis.aclose()


async def open_kv(store_url: str, data_dir: Path, *, memory: bool = False) -> KV:
    if store_url.partition("://")[0].lower() in {"redis", "rediss"}:
        return RedisKV(Redis.from_url(store_url))
    return await SqliteKV.open(None if memory else data_dir / "console.db")


class SessionStore(Store):
    """Litestar's server-side session store on the console's KV (namespace `session`)."""

    def __init__(self) -> None:
        self.kv: KV | None = None  # set when the console starts

    def _kv(self) -> KV:
        if self.kv is None:
            raise RuntimeError("the console's store is not open")
        return self.kv

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        if isinstance(expires_in, timedelta):
            expires_in = int(expires_in.total_seconds())
        data = value.encode() if isinstance(value, str) else value
        await self._kv().put("session", key, data, ttl=float(expires_in or 3600))

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        return await self._kv().get("session", key)

    async def delete(self, key: str) -> None:
        await self._kv().delete("session", key)

    async def delete_all(self) -> None:
        for key in await self._kv().items("session"):
            await self._kv().delete("session", key)

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        return None
