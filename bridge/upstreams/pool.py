"""Every upstream group of the bridge, their breaker store, probes and health checks."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from bridge.dify.client import DifyClient
from bridge.errors import BridgeError
from bridge.settings import ModelConfig, Settings
from bridge.upstreams.breaker import BreakerBackend, LocalBreakers
from bridge.upstreams.checks import AppShape, required_inputs
from bridge.upstreams.failover import failover_cause
from bridge.upstreams.group import Upstream, UpstreamGroup

log = structlog.get_logger("bridge.upstreams")


def breaker_backend(store_url: str) -> BreakerBackend:
    """Shared through Redis when the conversation store is Redis; else this process's own."""
    if store_url.lower().startswith(("redis://", "rediss://")):
        from bridge.upstreams.shared import RedisBreakers

        return RedisBreakers(store_url)
    return LocalBreakers()


def upstream_unavailable(group: UpstreamGroup, detail: str) -> BridgeError:
    return BridgeError(
        503,
        f"No upstream of model {group.model!r} can take this request now: {detail}.",
        type="server_error",
        code="upstream_unavailable",
        retryable=True,
        headers={"retry-after": str(group.retry_after())},
    )


class UpstreamPool:
    def __init__(
        self, settings: Settings, dify: DifyClient, backend: BreakerBackend | None = None
    ) -> None:
        self.settings = settings
        self.dify = dify
        self.shared = backend is None and settings.store.lower().startswith("redis")
        self.backend = backend or breaker_backend(settings.store)
        self.groups: dict[str, UpstreamGroup] = {
            model.id: UpstreamGroup(model, self, self.backend)
            for model in settings.models
            if model.upstreams
        }
        self._probing: set[asyncio.Task[None]] = set()
        self._health: list[asyncio.Task[None]] = []

    def group(self, config: ModelConfig) -> UpstreamGroup | None:
        return self.groups.get(config.id) if config.upstreams else None

    def unhealthy_models(self) -> list[str]:
        return [model for model, group in self.groups.items() if group.unhealthy()]

    async def start(self) -> None:
        """Mark upstreams that do not answer now as down (the start-up check already refused
        incompatible ones), then start the periodic health checks that were asked for."""
        for group in self.groups.values():
            await group.refresh()
            inspected = await asyncio.gather(*(self._inspect(u) for u in group.members))
            results = [cause for cause, _ in inspected]
            # What a returning upstream must still be (the start-up check compared them all).
            group.shape = next((shape for _, shape in inspected if shape is not None), None)
            if any(cause is None for cause in results):
                for upstream, cause in zip(group.members, results, strict=True):
                    if cause is not None and upstream.state.until == 0:
                        log.warning(
                            "upstream_down_at_start",
                            model=group.model,
                            upstream=upstream.name,
                            cause=cause,
                        )
                        await group.failed(upstream, cause, force=True)
            interval = group.config.breaker.health_interval
            if interval > 0:
                self._health.append(asyncio.create_task(self._check_every(group, interval)))

    async def close(self) -> None:
        for task in [*self._health, *self._probing]:
            task.cancel()
        for task in [*self._health, *self._probing]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.backend.close()

    async def _reachable(self, upstream: Upstream) -> str | None:
        """None if the app answers `GET /parameters`, else the failure's cause label."""
        try:
            async with asyncio.timeout(self.settings.connect_timeout + 5.0):
                await self.dify.request_json(upstream.target, "GET", "parameters")
        except TimeoutError:
            return "probe_timeout"
        except Exception as exc:
            return failover_cause(exc) or "probe_failed"
        return None

    async def _inspect(self, upstream: Upstream) -> tuple[str | None, AppShape | None]:
        """(None, its mode and required inputs) if the app answers `/info` and
        `/parameters`, else (the failure's cause label, None)."""
        try:
            async with asyncio.timeout(self.settings.connect_timeout + 5.0):
                info = await self.dify.info(upstream.target)
                parameters = await self.dify.parameters(upstream.target)
        except TimeoutError:
            return "probe_timeout", None
        except Exception as exc:
            return failover_cause(exc) or "probe_failed", None
        return None, AppShape(info.mode, required_inputs(parameters))

    def probe_soon(self, group: UpstreamGroup, upstream: Upstream) -> None:
        """The cool-down is over: one probe (per process; per Redis, one for all) decides."""
        if any(task.get_name() == upstream.uid for task in self._probing):
            return
        task = asyncio.create_task(self._probe(group, upstream), name=upstream.uid)
        self._probing.add(task)
        task.add_done_callback(self._probing.discard)

    async def _probe(self, group: UpstreamGroup, upstream: Upstream) -> None:
        if not await self.backend.claim_probe(upstream.uid, self.settings.connect_timeout + 5.0):
            return
        cause, shape = await self._inspect(upstream)
        if cause is None and group.shape is not None and shape != group.shape:
            # It came back as another kind of app (redeployed with another DSL): running
            # this model's requests there would fail or answer differently.
            log.error("upstream_incompatible", model=group.model, upstream=upstream.name)
            cause = "incompatible"
        log.info("upstream_probe", model=group.model, upstream=upstream.name, cause=cause)
        if cause is None:
            await group.succeeded(upstream, probe=True)
        else:
            await group.failed(upstream, cause, force=True)

    async def _check_every(self, group: UpstreamGroup, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            for upstream in group.members:
                if upstream.state.until != 0:
                    group.usable(upstream)  # ejected: the end of its cool-down probes it
                    continue
                cause = await self._reachable(upstream)
                if cause is not None:
                    await group.failed(upstream, cause)


def describe(pool: UpstreamPool | None) -> dict[str, Any]:
    """Health of each group, for /readyz."""
    if pool is None:
        return {}
    return {
        model: {u.name: ("up" if u.state.until == 0 else "ejected") for u in group.members}
        for model, group in pool.groups.items()
    }
