"""One model's upstreams at run time: who is healthy, who is next, what happened to them."""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from typing import TYPE_CHECKING

import structlog

from bridge.dify.client import DifyTarget
from bridge.settings import ModelConfig
from bridge.settings.upstreams import UpstreamConfig
from bridge.upstreams import metrics as m
from bridge.upstreams.balance import STRATEGIES
from bridge.upstreams.breaker import BreakerBackend, BreakerState, now_ms
from bridge.upstreams.checks import AppShape

if TYPE_CHECKING:
    from bridge.upstreams.pool import UpstreamPool

log = structlog.get_logger("bridge.upstreams")
# How long a shared (Redis) breaker view is used before it is read again: an ejection by one
# replica reaches the others within this.
SHARED_REFRESH = 0.5
# Weight of the newest time-to-first-event in the `latency` strategy's moving average.
TTFE_ALPHA = 0.3


class Upstream:
    def __init__(self, model: str, config: UpstreamConfig, index: int) -> None:
        assert config.dify_url is not None
        assert config.name is not None
        self.model = model
        self.index = index
        self.name = config.name
        self.target = DifyTarget(config.dify_url, config.app_key)
        # The breaker's key: per model and app, and no way back to the key.
        self.uid = hashlib.sha256(f"{model}\0{self.target.identity}".encode()).hexdigest()[:24]
        self.weight = config.weight
        self.priority = config.priority
        self.in_flight = 0
        self.ttfe: float | None = None
        self.state = BreakerState()
        self._in_flight_gauge = m.UPSTREAM_IN_FLIGHT.labels(model, self.name)

    def __repr__(self) -> str:
        return f"Upstream({self.model!r}, {self.name!r})"

    def enter(self) -> None:
        self.in_flight += 1
        self._in_flight_gauge.inc()

    def leave(self) -> None:
        self.in_flight -= 1
        self._in_flight_gauge.dec()

    def first_event(self, seconds: float) -> None:
        m.UPSTREAM_TTFE.labels(self.model, self.name).observe(seconds)
        self.ttfe = (
            seconds if self.ttfe is None else (TTFE_ALPHA * seconds + (1 - TTFE_ALPHA) * self.ttfe)
        )


class UpstreamGroup:
    def __init__(self, config: ModelConfig, pool: UpstreamPool, backend: BreakerBackend) -> None:
        self.model = config.id
        self.config = config
        self.members = [Upstream(config.id, u, i) for i, u in enumerate(config.upstreams or [])]
        self.max_attempts = config.max_attempts or len(self.members)
        self._choose = STRATEGIES[config.balance]
        self._turn = itertools.count()
        self._pool = pool
        self._backend = backend
        self._read_at = -math.inf
        self.shape: AppShape | None = None  # mode + required inputs, learned at start
        for upstream in self.members:
            m.UPSTREAM_HEALTHY.labels(self.model, upstream.name).set(1)

    def by_target(self, target: DifyTarget) -> Upstream | None:
        return next((u for u in self.members if u.target == target), None)

    async def refresh(self) -> None:
        """Take the shared view (other replicas' ejections) if it is older than a moment."""
        if not self._pool.shared or time.monotonic() - self._read_at < SHARED_REFRESH:
            return
        self._read_at = time.monotonic()
        states = await self._backend.read([u.uid for u in self.members])
        for upstream, state in zip(self.members, states, strict=True):
            self._set(upstream, state)

    def usable(self, upstream: Upstream) -> bool:
        """Closed: yes. Open: no. Half-open: no, but its probe is started."""
        state = upstream.state
        if state.until == 0:
            return True
        if now_ms() >= state.until:
            self._pool.probe_soon(self, upstream)
        return False

    def pick(self, exclude: frozenset[str] = frozenset()) -> Upstream | None:
        live = [u for u in self.members if u.uid not in exclude and self.usable(u)]
        if not live:
            return None
        tier = min(u.priority for u in live)
        return self._choose([u for u in live if u.priority == tier], next(self._turn))

    def retry_after(self) -> int:
        """Seconds until the first cool-down of this group ends (at least 1)."""
        now = now_ms()
        ends = [u.state.until - now for u in self.members if u.state.until > now]
        return max(1, math.ceil(min(ends) / 1000)) if ends else 1

    async def failed(self, upstream: Upstream, cause: str, *, force: bool = False) -> None:
        m.UPSTREAM_FAILURES.labels(self.model, upstream.name, cause).inc()
        breaker = self.config.breaker
        state = await self._backend.failure(
            upstream.uid, breaker.failures, breaker.cooldown, breaker.max_cooldown, force=force
        )
        self._set(upstream, state)

    async def succeeded(self, upstream: Upstream, *, probe: bool = False) -> None:
        if upstream.state.clean and not probe:
            return  # the hot path: a healthy upstream costs no store write
        self._set(upstream, await self._backend.success(upstream.uid, probe=probe))

    def _set(self, upstream: Upstream, state: BreakerState) -> None:
        before = upstream.state
        upstream.state = state
        was_out, now_out = before.until != 0, state.until != 0
        # By the count, not the time: a shared view's times move by a few ms on each read.
        if now_out and state.ejections > before.ejections:
            m.UPSTREAM_EJECTIONS.labels(self.model, upstream.name).inc()
            log.warning(
                "upstream_ejected",
                model=self.model,
                upstream=upstream.name,
                ejections=state.ejections,
                cooldown_s=round((state.until - now_ms()) / 1000, 1),
            )
        elif was_out and not now_out:
            m.UPSTREAM_RESTORES.labels(self.model, upstream.name).inc()
            log.info("upstream_restored", model=self.model, upstream=upstream.name)
        m.UPSTREAM_HEALTHY.labels(self.model, upstream.name).set(0 if now_out else 1)

    def unhealthy(self) -> bool:
        """No upstream takes traffic now (every one ejected or waiting for its probe)."""
        return all(u.state.until != 0 for u in self.members)
