"""What the overview says about each model's upstream(s): the Dify app's name and mode from
`/info` (cached), and health from the requests the bridge served.

A model has one upstream today; the view is a list per model so that models served by an
upstream group (docs/upstreams.md) show one row per member.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bridge.console.activity import RequestEntry
from bridge.dify.client import DifyClient, DifyTarget
from bridge.routing import ModelRegistry
from bridge.settings import ModelConfig

INFO_TTL = 60.0


@dataclass
class UpstreamView:
    url: str
    app_name: str
    mode: str
    error: str | None


@dataclass
class ModelView:
    id: str
    source: str  # "config / env" or "console"
    upstreams: list[UpstreamView]
    last_success: float | None
    last_error: float | None


class InfoCache:
    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, UpstreamView]] = {}

    async def view(self, dify: DifyClient, target: DifyTarget) -> UpstreamView:
        hit = self._cache.get(target.identity)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        try:
            info = await dify.info(target)
            view = UpstreamView(target.base_url, info.name, info.mode or "?", None)
        except Exception as exc:  # shown on the page; the key is not in these messages
            view = UpstreamView(target.base_url, "-", "-", type(exc).__name__)
        self._cache[target.identity] = (time.monotonic() + INFO_TTL, view)
        return view


def _targets(registry: ModelRegistry, config: ModelConfig) -> list[DifyTarget]:
    members = [(u.dify_url, u.app_key) for u in getattr(config, "upstreams", None) or []] or [
        (config.dify_url, config.app_key)
    ]
    return [DifyTarget(url or registry.base_url, key) for url, key in members if key]


async def model_views(
    registry: ModelRegistry,
    dify: DifyClient,
    cache: InfoCache,
    saved_ids: set[str],
    entries: list[RequestEntry],
) -> list[ModelView]:
    views = []
    for model_id in registry.managed_ids:
        config = registry.models[model_id]
        upstreams = [await cache.view(dify, t) for t in _targets(registry, config)]
        mine = [e for e in entries if e.model == model_id]
        ok = [e.time for e in mine if e.status < 400 and not e.error_code]
        bad = [e.time for e in mine if e.status >= 500 or e.error_code]
        views.append(
            ModelView(
                id=model_id,
                source="console" if model_id in saved_ids else "config / env",
                upstreams=upstreams,
                last_success=max(ok, default=None),
                last_error=max(bad, default=None),
            )
        )
    return views
