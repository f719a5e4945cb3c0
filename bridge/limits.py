"""Per-key limits on the generation endpoints: concurrent streams and requests per minute.

A *key* is the credential a client sends: a bridge key (managed models) or, in passthrough,
its own Dify app key. Keys are only ever handled as their sha256 (``key_sha256``), in
configuration, in Redis and in logs, never as themselves.

Configured under ``limits:`` (see docs/operations.md)::

    limits:
      default: {concurrent_streams: 20, requests_per_minute: 300}
      keys:
        - key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
          name: team-a            # metric label and log field; bounded, unlike key hashes
          concurrent_streams: 50

- ``concurrent_streams``: requests being answered at once (streaming or not: each one holds
  a Dify stream); the slot is held until the last byte of the response has gone out.
- ``requests_per_minute``: requests admitted in any sliding 60-second window.

With a Redis conversation store the counts live in that Redis, so the limits hold across all
replicas together; otherwise they are per process. A refused request gets 429
``rate_limit_exceeded`` with ``Retry-After``, which the openai SDKs honour. A Redis that fails
lets requests through (logged, counted): a broken limiter must not take the service down.

Redis data, under ``dify-bridge:limit:`` with expiries, so a crashed replica's slots free
themselves: ``slots:<hash>`` is a sorted set of slot tokens scored by lease expiry (a running
request renews its lease), ``window:<hash>`` a sorted set of admissions scored by time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Iterable
from typing import Protocol

import msgspec
import structlog
from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import Counter

from bridge.errors import BridgeError

log = structlog.get_logger("bridge.limits")

# The endpoints that run a Dify app; listing models or reading a stored response is cheap.
LIMITED_PATHS = frozenset(
    {
        "/v1/chat/completions",
        "/chat/completions",
        "/v1/responses",
        "/responses",
        "/v1/completions",
        "/completions",
    }
)
WINDOW_SECONDS = 60.0
# A Redis slot lease; renewed every third of it while its request runs, so a replica that
# dies holding slots gives them back within this long.
SLOT_LEASE_SECONDS = 60.0
# Nothing says when a stream ends; a second is a polite first retry.
CONCURRENCY_RETRY_AFTER = 1.0
REDIS_TIMEOUT = 0.5
NAMESPACE = "dify-bridge:limit"
DEFAULT_LABEL = "default"

RATE_LIMITED = Counter(
    "bridge_rate_limited_total",
    "Requests refused with 429 by a per-key limit, by limit and key name (`default` for keys "
    "without their own entry).",
    ["limit", "key"],
)
LIMITER_ERRORS = Counter(
    "bridge_rate_limiter_errors_total",
    "Limit checks that failed (Redis unreachable) and let the request through.",
)

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


# --- configuration ----------------------------------------------------------------------------


class Limit(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Limits for one key; ``None`` is no limit."""

    concurrent_streams: int | None = None
    requests_per_minute: int | None = None

    def __post_init__(self) -> None:
        # msgspec reports a ValueError here as a validation error at this struct's path.
        for name in ("concurrent_streams", "requests_per_minute"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (leave it out for no limit)")

    @property
    def limits_anything(self) -> bool:
        return self.concurrent_streams is not None or self.requests_per_minute is not None


class KeyLimit(Limit, frozen=True):
    """Limits for one key, named by the sha256 of the key (``printf %s "$KEY" | sha256sum``)."""

    key_sha256: str
    name: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _SHA256_HEX.match(self.key_sha256):
            raise ValueError("key_sha256 must be 64 lower-case hex digits (a sha256 of the key)")
        if self.name is not None and not re.match(r"^[A-Za-z0-9_.-]{1,64}$", self.name):
            raise ValueError("name must be 1-64 letters, digits, '_', '.' or '-'")


class LimitsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """The ``limits:`` section: ``default`` for every key, ``keys`` for particular ones."""

    default: Limit = msgspec.field(default_factory=Limit)
    keys: list[KeyLimit] = []

    def __post_init__(self) -> None:
        hashes = [entry.key_sha256 for entry in self.keys]
        if len(set(hashes)) != len(hashes):
            raise ValueError("keys: the same key_sha256 is listed twice")

    @property
    def enabled(self) -> bool:
        return self.default.limits_anything or any(k.limits_anything for k in self.keys)


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


# --- deciding ---------------------------------------------------------------------------------


def rate_limited(limit: str, retry_after: float) -> BridgeError:
    seconds = max(1, math.ceil(retry_after))
    if limit == "concurrent_streams":
        message = "Too many requests running at once for this API key; retry when one ends."
    else:
        message = "Rate limit reached for requests per minute for this API key."
    return BridgeError(
        429,
        f"{message} Retry after {seconds} s.",
        type="requests",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(seconds), "retry-after-ms": str(round(retry_after * 1000))},
    )


class Admission:
    """One admitted request: holds its concurrency slot (renewing a Redis lease) until
    :meth:`release`."""

    def __init__(self, counts: Counts, key: str, token: str | None) -> None:
        self._counts = counts
        self._key = key
        self._token = token
        self._renewal: asyncio.Task[None] | None = None
        if token is not None and counts.renews_slots:
            self._renewal = asyncio.create_task(self._renew(token))

    async def _renew(self, token: str) -> None:
        while True:
            await asyncio.sleep(SLOT_LEASE_SECONDS / 3)
            try:
                await self._counts.renew_slot(self._key, token)
            except LimiterUnavailable as exc:
                log.warning("rate_limiter_unavailable", error=str(exc))

    async def release(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
        if self._token is None:
            return
        token, self._token = self._token, None
        try:
            await self._counts.give_back_slot(self._key, token)
        except LimiterUnavailable as exc:
            # The lease runs out by itself.
            log.warning("rate_limiter_unavailable", error=str(exc))


class Limiter:
    """Decides per request; holds the configuration and the counts."""

    def __init__(self, config: LimitsConfig, counts: Counts) -> None:
        self.config = config
        self.counts = counts
        self._by_hash = {entry.key_sha256: entry for entry in config.keys}

    @classmethod
    def for_store(cls, config: LimitsConfig, store_url: str) -> Limiter:
        """Counted in Redis when the conversation store is Redis, else in this process."""
        scheme = store_url.partition("://")[0].lower()
        counts: Counts = RedisCounts(store_url) if scheme in {"redis", "rediss"} else LocalCounts()
        return cls(config, counts)

    def limit_for(self, key: str) -> tuple[Limit, str]:
        entry = self._by_hash.get(key)
        if entry is None:
            return self.config.default, DEFAULT_LABEL
        return entry, entry.name or entry.key_sha256[:12]

    async def admit(self, key: str) -> Admission:
        """Admit one request of ``key`` or raise the 429 :class:`BridgeError`."""
        limit, label = self.limit_for(key)
        token = uuid.uuid4().hex
        slot: str | None = None
        try:
            if limit.concurrent_streams is not None:
                if not await self.counts.take_slot(key, limit.concurrent_streams, token):
                    raise self._refuse("concurrent_streams", label, key, CONCURRENCY_RETRY_AFTER)
                slot = token
            if limit.requests_per_minute is not None:
                wait = await self.counts.admit(key, limit.requests_per_minute, token)
                if wait is not None:
                    if slot is not None:
                        await self.counts.give_back_slot(key, slot)
                    raise self._refuse("requests_per_minute", label, key, wait)
        except LimiterUnavailable as exc:
            LIMITER_ERRORS.inc()
            log.warning("rate_limiter_unavailable", error=str(exc))
            return Admission(self.counts, key, slot)
        return Admission(self.counts, key, slot)

    def _refuse(self, limit: str, label: str, key: str, retry_after: float) -> BridgeError:
        RATE_LIMITED.labels(limit, label).inc()
        log.warning("rate_limited", limit=limit, key=label, key_id=key[:12])
        return rate_limited(limit, retry_after)

    async def close(self) -> None:
        await self.counts.close()


# --- the middleware ---------------------------------------------------------------------------


def _credential(scope: Scope) -> str | None:
    from bridge.routing import credential_from_header

    for name, value in scope["headers"]:
        if name == b"authorization":
            return credential_from_header(value.decode("latin-1"))
    return None


class RateLimits:
    """ASGI middleware around the generation endpoints.

    Wrong keys are not counted (the route answers them 401; counting them would let anyone
    fill the counts with made-up keys). The concurrency slot is given back when the wrapped
    app returns, which for a stream is after its last frame (or the client going away).
    """

    def __init__(self, app: ASGIApp, limiter: Limiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in LIMITED_PATHS
        ):
            await self.app(scope, receive, send)
            return
        credential = _credential(scope)
        if not self._authenticates(scope, credential):
            await self.app(scope, receive, send)
            return
        try:
            admission = await self.limiter.admit(key_hash(credential))
        except BridgeError as refusal:
            await _send_error(send, refusal)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            await admission.release()

    @staticmethod
    def _authenticates(scope: Scope, credential: str | None) -> bool:
        registry = getattr(scope["app"].state, "registry", None)
        if registry is None:
            return True
        try:
            registry.authenticate(credential)
        except BridgeError:
            return False
        return True


async def _send_error(send: Send, error: BridgeError) -> None:
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers().items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": msgspec.json.encode(error.body())})


class RateLimiting:
    """What the app registers: the middleware (none when no limit is configured) and the
    shutdown hook that closes the counts' connections."""

    def __init__(self, config: LimitsConfig, store_url: str) -> None:
        self.limiter = Limiter.for_store(config, store_url) if config.enabled else None

    @property
    def middleware(self) -> Iterable[DefineMiddleware]:
        if self.limiter is None:
            return ()
        return (DefineMiddleware(RateLimits, limiter=self.limiter),)

    async def close(self) -> None:
        if self.limiter is not None:
            await self.limiter.close()
