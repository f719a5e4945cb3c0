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
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Iterable

import msgspec
import structlog
from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import Counter

from bridge.errors import BridgeError
from bridge.http.limit_counts import (
    SLOT_LEASE_SECONDS,
    Counts,
    LimiterUnavailable,
    LocalCounts,
    RedisCounts,
    key_hash,
)
from bridge.settings.limits import Limit, LimitsConfig

log = structlog.get_logger("bridge.http.limits")

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
# Nothing says when a stream ends; a second is a polite first retry.
CONCURRENCY_RETRY_AFTER = 1.0
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
