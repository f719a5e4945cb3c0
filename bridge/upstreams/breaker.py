"""Outlier detection per upstream: consecutive failures eject it for a growing cool-down.

The state machine is the same for both backends; only where the numbers live differs:

- closed: `until == 0`; each failure before Dify accepted a run adds one to `failures`, a
  success resets it; at `failures >= threshold` the upstream is ejected;
- open: `now < until`; nothing is sent to it;
- half-open: `until != 0 and now >= until`; one `GET /parameters` probe (claimed by one
  process: `claim_probe`) decides: success closes it, failure re-ejects it with the doubled
  cool-down (`ejections` counts repeats; a real success after closing resets it).

Times are wall-clock milliseconds, so replicas sharing Redis agree on them.
"""

from __future__ import annotations

import time
from typing import Protocol

import msgspec


class BreakerState(msgspec.Struct, kw_only=True):
    failures: int = 0
    ejections: int = 0
    until: int = 0  # ms since the epoch; 0: closed

    def ejected(self, now_ms: int) -> bool:
        return self.until != 0 and now_ms < self.until

    def half_open(self, now_ms: int) -> bool:
        return self.until != 0 and now_ms >= self.until

    @property
    def clean(self) -> bool:
        return self.failures == 0 and self.ejections == 0 and self.until == 0


def now_ms() -> int:
    return int(time.time() * 1000)


def cooldown_ms(ejections: int, base: float, cap: float) -> int:
    return int(min(base * 2 ** max(ejections - 1, 0), cap) * 1000)


class BreakerBackend(Protocol):
    async def failure(
        self, uid: str, threshold: int, base: float, cap: float, *, force: bool = False
    ) -> BreakerState:
        """Count a failure; eject when it reaches `threshold` (or at once with `force`)."""
        ...

    async def success(self, uid: str, *, probe: bool) -> BreakerState: ...

    async def read(self, uids: list[str]) -> list[BreakerState]: ...

    async def claim_probe(self, uid: str, ttl: float) -> bool:
        """Whether this process runs the probe that ends a cool-down (one at a time)."""
        ...

    async def close(self) -> None: ...


class LocalBreakers:
    """Per-process state (the memory and SQLite stores): each replica ejects on its own."""

    def __init__(self) -> None:
        self._states: dict[str, BreakerState] = {}
        self._probes: dict[str, float] = {}

    def _state(self, uid: str) -> BreakerState:
        return self._states.setdefault(uid, BreakerState())

    async def failure(
        self, uid: str, threshold: int, base: float, cap: float, *, force: bool = False
    ) -> BreakerState:
        state = self._state(uid)
        now = now_ms()
        if state.ejected(now):
            return msgspec.structs.replace(state)
        state.failures += 1
        if force or state.failures >= threshold or state.half_open(now):
            state.ejections += 1
            state.until = now + cooldown_ms(state.ejections, base, cap)
            state.failures = 0
        # A copy: the group compares what it held before with what comes back.
        return msgspec.structs.replace(state)

    async def success(self, uid: str, *, probe: bool) -> BreakerState:
        state = self._state(uid)
        if probe:
            state.until = 0
            state.failures = 0
        elif not state.ejected(now_ms()):
            state.until = 0
            state.failures = 0
            state.ejections = 0
        self._probes.pop(uid, None)
        return msgspec.structs.replace(state)

    async def read(self, uids: list[str]) -> list[BreakerState]:
        return [msgspec.structs.replace(self._state(uid)) for uid in uids]

    async def claim_probe(self, uid: str, ttl: float) -> bool:
        now = time.monotonic()
        if self._probes.get(uid, 0.0) > now:
            return False
        self._probes[uid] = now + ttl
        return True

    async def close(self) -> None:
        return None
