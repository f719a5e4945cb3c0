"""Upstream groups: one model served by several Dify apps/instances (docs/upstreams.md).

Config types and their checks; the runtime (balancing, failover, breaker) is bridge.upstreams.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import msgspec

if TYPE_CHECKING:
    from bridge.settings import ModelConfig

BalanceStrategy = Literal["weighted", "round_robin", "least_busy", "latency"]
OwnerDownPolicy = Literal["unavailable", "fork"]
BALANCE_STRATEGIES = ("weighted", "round_robin", "least_busy", "latency")
_URL = re.compile(r"^https?://[^/\s]+")


class UpstreamConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    app_key: str
    # None: the bridge's DIFY_API_URL.
    dify_url: str | None = None
    # Shown in logs and metrics labels (never the key); default: host:port of the URL.
    name: str | None = None
    weight: float = 1.0
    # Lower first: priority 1 is used only while every priority-0 upstream is down.
    priority: int = 0

    def __repr__(self) -> str:
        return f"UpstreamConfig(name={self.name!r}, dify_url={self.dify_url!r}, key=<redacted>)"


class BreakerConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Consecutive failures (before Dify accepted a run) that eject an upstream.
    failures: int = 3
    # First ejection's cool-down; it doubles on each repeated ejection, up to `max_cooldown`.
    cooldown: float = 10.0
    max_cooldown: float = 300.0
    # Seconds between active `GET /parameters` checks of every upstream; 0: only the probe
    # that ends a cool-down.
    health_interval: float = 0.0


def check_upstreams(model: ModelConfig, where: str, default_url: str | None) -> None:
    """Validate a model's upstream group and fill in names and URLs (raises ConfigError)."""
    from bridge.settings import ConfigError

    if model.balance not in BALANCE_STRATEGIES:
        raise ConfigError(f"{where}.balance: unknown strategy {model.balance!r}")
    if model.upstreams is None:
        return
    if not model.upstreams:
        raise ConfigError(f"{where}.upstreams: must list at least one upstream")
    if model.app_key is not None:
        raise ConfigError(f"{where}.app_key: use either app_key or upstreams, not both")
    names: set[str] = set()
    for index, upstream in enumerate(model.upstreams):
        at = f"{where}.upstreams[{index}]"
        if not upstream.app_key.strip():
            raise ConfigError(f"{at}.app_key: must not be empty")
        upstream.dify_url = upstream.dify_url or model.dify_url or default_url
        if upstream.dify_url is None:
            raise ConfigError(f"{at}.dify_url: required (no DIFY_API_URL to default to)")
        if not _URL.match(upstream.dify_url):
            raise ConfigError(f"{at}.dify_url: expected an http(s) URL")
        if not upstream.weight > 0:
            raise ConfigError(f"{at}.weight: must be positive, got {upstream.weight:g}")
        if upstream.priority < 0:
            raise ConfigError(f"{at}.priority: must not be negative")
        if upstream.name is None:
            upstream.name = urlsplit(upstream.dify_url).netloc
            if upstream.name in names:
                upstream.name = f"{upstream.name}#{index}"
        if upstream.name in names:
            raise ConfigError(f"{at}.name: duplicate upstream name {upstream.name!r}")
        names.add(upstream.name)
    if model.max_attempts is not None and model.max_attempts < 1:
        raise ConfigError(f"{where}.max_attempts: must be at least 1")
    breaker = model.breaker
    if breaker.failures < 1:
        raise ConfigError(f"{where}.breaker.failures: must be at least 1")
    if not 0 < breaker.cooldown <= breaker.max_cooldown:
        raise ConfigError(f"{where}.breaker.cooldown: must be positive and <= max_cooldown")
    if breaker.health_interval < 0:
        raise ConfigError(f"{where}.breaker.health_interval: must not be negative")
    # The rest of the bridge (check, readiness, the server-key list) sees the first upstream
    # as the model's app; the group is used where runs are started.
    model.app_key = model.upstreams[0].app_key
    model.dify_url = model.upstreams[0].dify_url


def parse_upstreams_env(raw: str) -> list[dict[str, object]]:
    """`BRIDGE_UPSTREAMS`: comma-separated `KEY@URL[;weight=N][;priority=N][;name=X]`."""
    from bridge.settings import ConfigError

    upstreams: list[dict[str, object]] = []
    for index, entry in enumerate(item.strip() for item in raw.split(",")):
        if not entry:
            continue
        head, *options = entry.split(";")
        key, sep, url = head.partition("@")
        if not sep or not key.strip() or not url.strip():
            raise ConfigError(f"BRIDGE_UPSTREAMS[{index}]: expected KEY@URL[;weight=N]...")
        item: dict[str, object] = {"app_key": key.strip(), "dify_url": url.strip()}
        for option in options:
            name, sep, value = option.partition("=")
            name = name.strip()
            if not sep or name not in ("weight", "priority", "name"):
                raise ConfigError(
                    f"BRIDGE_UPSTREAMS[{index}]: unknown option {name!r} (weight, priority, name)"
                )
            item[name] = value.strip()
        upstreams.append(item)
    return upstreams
