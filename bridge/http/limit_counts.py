"""Where per-key limits are counted: in this process, or in Redis for every replica.

Redis data, under ``dify-bridge:limit:`` with expiries, so a crashed replica's slots free
themselves: ``slots:<hash>`` is a sorted set of slot tokens scored by lease expiry (a running
request renews its lease), ``window:<hash>`` a sorted set of admissions scored by time.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import deque
from typing import Protocol

WINDOW_SECONDS = 60.0
# A Redis slot lease; renewed every third of it while its request runs, so a replica that
# dies holding slots gives them back within this long.
SLOT_LEASE_SECONDS = 60.0
REDIS_TIMEOUT = 0.5
NAMESPACE = "dify-bridge:limit"


def key_hash(credential: str | None) -> str:
    """How a key is known here. No credential (open managed models) is one shared key."""
    return hashlib.sha256((credential or "").encode()).hexdigest()


# --- counting ---------------------------------------------------------------------------------


class LimiterUnavailable(Exception):
    """The shared counts cannot be reached; the request is let through."""


class Counts(Protocol):
    """Where slots and admissions are counted: this process, or Redis for all replicas."""

    async def take_slot(self, key: str, limit: int, token: str) -> bool: ...

    async def renew_slot(self, key: str, token: str) -> None: ...

    async def give_back_slot(self, key: str, token: str) -> None: ...

    async def admit(self, key: str, limit: int, token: str) -> float | None:
        """Count one admission; ``None`` if admitted, else seconds until one would be."""
        ...

    @property
    def renews_slots(self) -> bool: ...

    async def close(self) -> None: ...


class LocalCounts:
    """Counts in this process. Nothing here awaits, so every method is atomic on the loop."""

    renews_slots = False

    def __init__(self) -> None:
        self._slots: dict[str, set[str]] = {}
        self._windows: dict[str, deque[float]] = {}

    async def take_slot(self, key: str, limit: int, token: str) -> bool:
        slots = self._slots.setdefault(key, set())
        if len(slots) >= limit:
            return False
        slots.add(token)
        return True

    async def renew_slot(self, key: str, token: str) -> None:
        return None

    async def give_back_slot(self, key: str, token: str) -> None:
        slots = self._slots.get(key)
        if slots is not None:
            slots.discard(token)
            if not slots:
                del self._slots[key]

    async def admit(self, key: str, limit: int, token: str) -> float | None:
        now = time.monotonic()
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - WINDOW_SECONDS:
            window.popleft()
        if len(window) >= limit:
            return window[0] + WINDOW_SECONDS - now
        window.append(now)
        self._prune(now)
        return None

    def _prune(self, now: float) -> None:
        # Keys that stopped calling would otherwise keep their (empty) windows forever.
        if len(self._windows) < 1024:
            return
        for key in [k for k, w in self._windows.items() if not w or w[-1] <= now - WINDOW_SECONDS]:
            del self._windows[key]

    async def close(self) -> None:
        return None


# All scripts take the time from Redis itself: replicas' clocks need not agree.
_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# KEYS[1] slots; ARGV: limit, token, lease ms.
_TAKE_SLOT = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
    return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
)
# KEYS[1] slots; ARGV: token, lease ms. A lease that already lapsed is not brought back.
_RENEW_SLOT = (
    _NOW_MS
    + """
if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1]) == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""
)
# KEYS[1] window; ARGV: limit, token, window ms. Returns -1 when admitted, else ms to wait.
_ADMIT = (
    _NOW_MS
    + """
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], window)
return -1
"""
)


class RedisCounts:
    """Counts in Redis, shared by every replica using it. Connects lazily, on the loop that
    serves requests."""

    renews_slots = True

    def __init__(self, url: str, *, namespace: str = NAMESPACE) -> None:
        import redis.asyncio as redis  # only deployments with a Redis store load it

        self._client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
        )
        self._namespace = namespace
        self._take = self._client.register_script(_TAKE_SLOT)
        self._renew = self._client.register_script(_RENEW_SLOT)
        self._admit = self._client.register_script(_ADMIT)
        self._lease_ms = round(SLOT_LEASE_SECONDS * 1000)

    async def take_slot(self, key: str, limit: int, token: str) -> bool:
        with _unavailable_on_error():
            taken = await self._take(keys=[self._slots(key)], args=[limit, token, self._lease_ms])
        return bool(taken)

    async def renew_slot(self, key: str, token: str) -> None:
        with _unavailable_on_error():
            await self._renew(keys=[self._slots(key)], args=[token, self._lease_ms])

    async def give_back_slot(self, key: str, token: str) -> None:
        with _unavailable_on_error():
            await self._client.zrem(self._slots(key), token)

    async def admit(self, key: str, limit: int, token: str) -> float | None:
        window_ms = round(WINDOW_SECONDS * 1000)
        with _unavailable_on_error():
            wait_ms = await self._admit(keys=[self._window(key)], args=[limit, token, window_ms])
        wait_ms = int(wait_ms)
        return None if wait_ms < 0 else wait_ms / 1000

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.aclose()

    def _slots(self, key: str) -> str:
        return f"{self._namespace}:slots:{key}"

    def _window(self, key: str) -> str:
        return f"{self._namespace}:window:{key}"


@contextlib.contextmanager
def _unavailable_on_error():  # type: ignore[no-untyped-def]
    from redis.exceptions import RedisError

    try:
        yield
    except (RedisError, OSError, TimeoutError) as exc:
        raise LimiterUnavailable(f"{type(exc).__name__}: {exc}") from exc
