"""Bridge keys issued in the console: stored as their sha256 only, shown once at creation.

A record per key (namespace `key`), token usage per key and period (namespace `usage`), and
the playground's session-scoped tokens (records with `session=True` and a lifetime). Every
request with a console key reads its record, so a revocation counts on the next request on
every replica.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Literal

import msgspec

from bridge.console.kv import KV
from bridge.console.quota import Period, period_id, seconds_left
from bridge.routing.grants import KeyGrant, key_sha256

KEY_PREFIX = "sk-br-"
_USAGE_MARGIN = 3 * 86400.0


class KeyRecord(msgspec.Struct, kw_only=True):
    key_sha256: str
    name: str
    hint: str  # the first characters, enough to tell keys apart in the list
    models: list[str] = []
    concurrent_streams: int | None = None
    requests_per_minute: int | None = None
    budget_tokens: int | None = None
    budget_period: Period = "day"
    created: float = 0.0
    revoked: float | None = None
    session: bool = False

    @property
    def id(self) -> str:
        return self.key_sha256[:12]

    @property
    def active(self) -> bool:
        return self.revoked is None

    def grant(self) -> KeyGrant:
        return KeyGrant(key_sha256=self.key_sha256, name=self.name, models=tuple(self.models))


_encode = msgspec.json.encode
_decode = msgspec.json.Decoder(KeyRecord).decode


class KeyStore:
    def __init__(self, kv: KV) -> None:
        self.kv = kv

    async def create(
        self,
        name: str,
        *,
        models: list[str] | None = None,
        concurrent_streams: int | None = None,
        requests_per_minute: int | None = None,
        budget_tokens: int | None = None,
        budget_period: Period = "day",
    ) -> tuple[str, KeyRecord]:
        """(the key itself, to show once; its record)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = KeyRecord(
            key_sha256=key_sha256(key),
            name=name,
            hint=key[: len(KEY_PREFIX) + 4] + "…",
            models=models or [],
            concurrent_streams=concurrent_streams,
            requests_per_minute=requests_per_minute,
            budget_tokens=budget_tokens,
            budget_period=budget_period,
            created=time.time(),
        )
        await self.kv.put("key", record.key_sha256, _encode(record))
        await self.kv.incr("meta", "keys")
        return key, record

    async def session_token(self, lifetime: float) -> str:
        """A token for the playground: any model, no budget, gone after `lifetime` s."""
        key = KEY_PREFIX + "pg-" + secrets.token_urlsafe(32)
        record = KeyRecord(
            key_sha256=key_sha256(key),
            name="console",
            hint="playground",
            session=True,
            created=time.time(),
        )
        await self.kv.put("key", record.key_sha256, _encode(record), ttl=lifetime)
        return key

    async def lookup(self, digest: str) -> KeyRecord | None:
        raw = await self.kv.get("key", digest)
        return _decode(raw) if raw is not None else None

    async def all(self) -> list[KeyRecord]:
        records = [_decode(raw) for raw in (await self.kv.items("key")).values()]
        return sorted((r for r in records if not r.session), key=lambda r: r.created)

    async def revoke(self, key_id: str) -> KeyRecord | None:
        for record in await self.all():
            if record.id == key_id and record.active:
                record.revoked = time.time()
                await self.kv.put("key", record.key_sha256, _encode(record))
                await self.kv.incr("meta", "keys")
                return record
        return None

    async def issued(self) -> bool:
        """Whether any (non-session) key was ever created: the models then need a key."""
        return bool(await self.all())

    # --- usage ------------------------------------------------------------------------

    async def used(self, record: KeyRecord, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        raw = await self.kv.get(
            "usage", f"{record.key_sha256}:{period_id(record.budget_period, now)}"
        )
        return int(raw) if raw is not None else 0

    async def add_usage(self, digest: str, tokens: int, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        for period in ("day", "month"):
            p: Literal["day", "month"] = period  # type: ignore[assignment]
            await self.kv.incr(
                "usage",
                f"{digest}:{period_id(p, now)}",
                tokens,
                ttl=seconds_left(p, now) + _USAGE_MARGIN,
            )
        await self.kv.put("last_used", digest, str(time.time()).encode())

    async def last_used(self, digest: str) -> float | None:
        raw = await self.kv.get("last_used", digest)
        return float(raw) if raw is not None else None

    async def used_on(self, digest: str, period: Period, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        raw = await self.kv.get("usage", f"{digest}:{period_id(period, now)}")
        return int(raw) if raw is not None else 0
