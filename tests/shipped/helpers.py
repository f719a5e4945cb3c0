"""Small clients for the shipped-bridge tests."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

# A client that has not got its whole answer this long after asking is hanging: the stand-ins
# answer at once, and the bridge's keepalive comments (15 s) are further apart than this.
CLIENT_TIMEOUT = httpx.Timeout(10.0)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def sse_data(text: str) -> list[Any]:
    """The `data:` payloads of an SSE body, JSON-decoded except `[DONE]`."""
    out: list[Any] = []
    for line in text.splitlines():
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def stats(dify_v1: str) -> dict[str, Any]:
    base = dify_v1.removesuffix("/v1")
    return httpx.get(f"{base}/_scripted/stats", timeout=5).json()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll `predicate` until it holds or `timeout` passes (a bounded wait, not a timing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
