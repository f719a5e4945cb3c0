"""Which Dify release a Service API base URL runs, and what that release lacks.

`GET /v1/` answers `{welcome, api_version, server_version}` without a key on every release from
0.15.3 to 1.13.x (dify-versions.md §1.1). The bridge prefers rules that hold on every release
(error parsing, end of answer, mode discovery); the version is read only to report it
(`dify-bridge check`, `/readyz`) and to say plainly which features a release does not have.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import msgspec
import structlog

log = structlog.get_logger("bridge.dify")

Version = tuple[int, int, int]
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


class _Index(msgspec.Struct, kw_only=True):
    server_version: str | None = None


def parse_version(text: str | None) -> Version | None:
    match = _VERSION.match(text.strip()) if text else None
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


# (first release with the feature, what a bridge user misses without it). Only features a
# bridge user could ask for; everything else is handled the same way on every release.
_FEATURES: tuple[tuple[Version, str], ...] = (
    ((1, 0, 0), "follow-up turns reuse the first turn's inputs (Dify < 1.0 ignores new ones)"),
    ((1, 4, 0), "no app mode in /info (the bridge learns it from Dify's error codes) and no /site"),
    ((1, 7, 2), "no workflow version pinning (workflow_id is ignored by Dify < 1.7.2)"),
)


def limitations(version: str | None) -> list[str]:
    """What this release lacks that a newer one has, one short line each."""
    parsed = parse_version(version)
    if parsed is None:
        return []
    return [text for first, text in _FEATURES if parsed < first]


PROBE_TIMEOUT = 5.0


async def fetch_server_version(http: httpx.AsyncClient, base_url: str) -> str | None:
    """`server_version` from `GET <base>/` (no key), or None when Dify does not say."""
    try:
        response = await http.get(base_url.rstrip("/") + "/", timeout=PROBE_TIMEOUT)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        return msgspec.json.decode(response.content, type=_Index).server_version
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class ServerVersions:
    """`server_version` per upstream base URL, cached (an upgrade is noticed after `ttl`)."""

    def __init__(self, http: httpx.AsyncClient, ttl: float = 300.0) -> None:
        self._http = http
        self._ttl = ttl
        self._known: dict[str, tuple[str | None, float]] = {}
        self._lock = asyncio.Lock()

    async def get(self, base_url: str) -> str | None:
        key = base_url.rstrip("/")
        cached = self._known.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        async with self._lock:
            cached = self._known.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            version = await fetch_server_version(self._http, key)
            if version and (cached is None or cached[0] != version):
                # Once per upstream (and again after an upgrade): the release, and what it lacks.
                log.info("dify_version", dify_url=key, version=version, lacks=limitations(version))
            # An unanswered probe is retried soon, a known version kept for `ttl`.
            ttl = self._ttl if version else min(self._ttl, 10.0)
            self._known[key] = (version, time.monotonic() + ttl)
            return version
