"""Readiness: can this bridge serve requests right now?

Dify must answer, and with managed models every app key must be accepted (`GET /info` 200).
Probes are short and their result is cached (`Settings.ready_cache_ttl`) so that a load
balancer polling `/readyz` every second does not turn into a stream of Dify calls; callers
that arrive while a probe runs wait for that probe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec

from bridge.dify.client import DifyTarget
from bridge.dify.versions import ServerVersions, limitations
from bridge.routing import ModelRegistry

PROBE_TIMEOUT = 5.0


class Check(msgspec.Struct, kw_only=True, omit_defaults=True):
    ok: bool
    detail: str | None = None  # why it failed; never a key
    version: str | None = None  # Dify's `server_version` (the dify check only)
    lacks: list[str] | None = None  # what that release does not have (dify/versions.py)


class ReadinessReport(msgspec.Struct, kw_only=True):
    dify: Check
    models: dict[str, Check]
    checked_at: float  # time.monotonic() of the probe

    @property
    def ready(self) -> bool:
        return self.dify.ok and all(check.ok for check in self.models.values())

    def body(self) -> dict[str, Any]:
        failed = (["dify"] if not self.dify.ok else []) + [
            f"model:{model}" for model, check in self.models.items() if not check.ok
        ]
        return {
            "status": "ready" if self.ready else "not_ready",
            "failed": failed,
            "checks": msgspec.to_builtins({"dify": self.dify, "models": self.models}),
            "age_seconds": round(time.monotonic() - self.checked_at, 1),
        }


async def probe_dify(http: httpx.AsyncClient, base_url: str) -> Check:
    """Dify's Service API answers `/info` without a key with 401: that is enough to know it
    is there and that the URL points at the API (a wrong path answers 404)."""
    try:
        response = await http.get(base_url.rstrip("/") + "/info", timeout=PROBE_TIMEOUT)
    except httpx.TimeoutException:
        return Check(ok=False, detail=f"no answer from {base_url} within {PROBE_TIMEOUT:g}s")
    except httpx.TransportError as exc:
        return Check(ok=False, detail=f"cannot connect to {base_url} ({type(exc).__name__})")
    if response.status_code in (200, 401, 403):
        return Check(ok=True)
    if response.status_code == 404:
        return Check(
            ok=False, detail=f"{base_url}/info answered 404: is DIFY_API_URL the …/v1 API base?"
        )
    return Check(ok=False, detail=f"{base_url} answered HTTP {response.status_code}")


async def probe_key(http: httpx.AsyncClient, target: DifyTarget) -> Check:
    try:
        response = await http.get(target.url("info"), headers=target.headers, timeout=PROBE_TIMEOUT)
    except httpx.TimeoutException:
        return Check(ok=False, detail="Dify did not answer in time")
    except httpx.TransportError as exc:
        return Check(ok=False, detail=f"Dify unreachable ({type(exc).__name__})")
    if response.status_code == 200:
        return Check(ok=True)
    if response.status_code in (401, 403):
        return Check(ok=False, detail=f"Dify rejected the app key (HTTP {response.status_code})")
    return Check(ok=False, detail=f"Dify answered HTTP {response.status_code} to /info")


class Readiness:
    def __init__(
        self,
        registry: ModelRegistry,
        http: httpx.AsyncClient,
        ttl: float,
        upstreams: Callable[[], dict[str, dict[str, str]]] | None = None,
    ) -> None:
        # Upstream groups (docs/upstreams.md): model → upstream name → "up" | "ejected".
        self._upstreams = upstreams
        self._registry = registry
        self._http = http
        self._ttl = ttl
        self._last: ReadinessReport | None = None
        self._lock = asyncio.Lock()
        self._versions = ServerVersions(http)

    async def report(self) -> ReadinessReport:
        async with self._lock:
            last = self._last
            if last is None or time.monotonic() - last.checked_at >= self._ttl:
                last = self._last = await self._probe()
            return self._with_upstreams(last)

    def _with_upstreams(self, report: ReadinessReport) -> ReadinessReport:
        """A model with several upstreams is ready while one of them takes traffic (the
        breakers' live view, not cached); `/readyz` names the model that has none."""
        groups = self._upstreams() if self._upstreams is not None else {}
        if not groups:
            return report
        models = dict(report.models)
        for model, members in groups.items():
            down = [name for name, state in members.items() if state != "up"]
            if len(down) == len(members):
                models[model] = Check(ok=False, detail=f"no healthy upstream ({', '.join(down)})")
            else:
                detail = f"ejected: {', '.join(down)}" if down else None
                models[model] = Check(ok=True, detail=detail)
        return msgspec.structs.replace(report, models=models)

    async def _probe(self) -> ReadinessReport:
        registry = self._registry
        managed = [registry.models[model_id] for model_id in registry.managed_ids]
        targets = {
            model.id: DifyTarget(model.dify_url or registry.base_url, model.app_key or "")
            for model in managed
        }
        dify, version, *keys = await asyncio.gather(
            probe_dify(self._http, registry.base_url),
            self._versions.get(registry.base_url),
            *(probe_key(self._http, target) for target in targets.values()),
        )
        if version:
            dify = msgspec.structs.replace(
                dify, version=version, lacks=limitations(version) or None
            )
        return ReadinessReport(
            dify=dify, models=dict(zip(targets, keys, strict=True)), checked_at=time.monotonic()
        )
