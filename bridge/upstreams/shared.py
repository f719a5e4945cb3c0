"""Breaker state in Redis, shared by every replica that uses the same Redis store.

`dify-bridge:upstream:<uid>` is a hash (failures, ejections, until in Redis's own ms clock);
`…:probe` a short lock so one replica probes an upstream at the end of its cool-down. The
scripts take the time from Redis and return the cool-down left (`remaining`, -1: closed), so
the replicas' clocks need not agree. If Redis fails, the process falls back to its own state
(logged): a broken Redis must not stop traffic.
"""

from __future__ import annotations

import contextlib

import structlog

from bridge.upstreams.breaker import BreakerState, LocalBreakers, cooldown_ms, now_ms

log = structlog.get_logger("bridge.upstreams")
NAMESPACE = "dify-bridge:upstream"
REDIS_TIMEOUT = 0.5
# A breaker entry outlives its longest cool-down; an idle upstream's counts then go away.
ENTRY_TTL_MS = 24 * 3600 * 1000

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function state()
    local s = redis.call('HMGET', KEYS[1], 'failures', 'ejections', 'until')
    return tonumber(s[1] or 0), tonumber(s[2] or 0), tonumber(s[3] or 0)
end
local function reply(f, e, u)
    redis.call('HSET', KEYS[1], 'failures', f, 'ejections', e, 'until', u)
    redis.call('PEXPIRE', KEYS[1], ARGV[5] or 86400000)
    if u == 0 then return {f, e, -1} end
    return {f, e, u - now}
end
"""
# ARGV: threshold, base ms, cap ms, force (0/1), ttl ms.
_FAILURE = (
    _NOW
    + """
local f, e, u = state()
if u ~= 0 and now < u then return {f, e, u - now} end
f = f + 1
if tonumber(ARGV[4]) == 1 or f >= tonumber(ARGV[1]) or u ~= 0 then
    e = e + 1
    u = now + math.min(tonumber(ARGV[2]) * 2 ^ (e - 1), tonumber(ARGV[3]))
    f = 0
end
return reply(f, e, u)
"""
)
# ARGV: probe (0/1), -, -, -, ttl ms.
_SUCCESS = (
    _NOW
    + """
local f, e, u = state()
if tonumber(ARGV[1]) == 1 then return reply(0, e, 0) end
if u ~= 0 and now < u then return {f, e, u - now} end
return reply(0, 0, 0)
"""
)
_READ = (
    _NOW
    + """
local f, e, u = state()
if u == 0 then return {f, e, -1} end
return {f, e, u - now}
"""
)


def _state(reply: list[int]) -> BreakerState:
    failures, ejections, remaining = (int(x) for x in reply)
    until = 0 if remaining < 0 else max(now_ms() + remaining, 1)
    return BreakerState(failures=failures, ejections=ejections, until=until)


class RedisBreakers:
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis  # only deployments with a Redis store load it

        self._client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
        )
        self._failure = self._client.register_script(_FAILURE)
        self._success = self._client.register_script(_SUCCESS)
        self._read = self._client.register_script(_READ)
        self._fallback = LocalBreakers()

    @staticmethod
    def _key(uid: str) -> str:
        return f"{NAMESPACE}:{uid}"

    async def failure(
        self, uid: str, threshold: int, base: float, cap: float, *, force: bool = False
    ) -> BreakerState:
        args = [threshold, cooldown_ms(1, base, cap), int(cap * 1000), int(force), ENTRY_TTL_MS]
        try:
            return _state(await self._failure(keys=[self._key(uid)], args=args))
        except Exception as exc:
            log.warning("upstream_breaker_store_unavailable", error=type(exc).__name__)
            return await self._fallback.failure(uid, threshold, base, cap, force=force)

    async def success(self, uid: str, *, probe: bool) -> BreakerState:
        args = [int(probe), 0, 0, 0, ENTRY_TTL_MS]
        try:
            state = _state(await self._success(keys=[self._key(uid)], args=args))
            with contextlib.suppress(Exception):
                await self._client.delete(f"{self._key(uid)}:probe")
            return state
        except Exception as exc:
            log.warning("upstream_breaker_store_unavailable", error=type(exc).__name__)
            return await self._fallback.success(uid, probe=probe)

    async def read(self, uids: list[str]) -> list[BreakerState]:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for uid in uids:
                    await self._read(keys=[self._key(uid)], args=[], client=pipe)
                replies = await pipe.execute()
            return [_state(reply) for reply in replies]
        except Exception as exc:
            log.warning("upstream_breaker_store_unavailable", error=type(exc).__name__)
            return await self._fallback.read(uids)

    async def claim_probe(self, uid: str, ttl: float) -> bool:
        try:
            key = f"{self._key(uid)}:probe"
            return bool(await self._client.set(key, "1", nx=True, px=max(int(ttl * 1000), 1)))
        except Exception:
            return await self._fallback.claim_probe(uid, ttl)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.aclose()
