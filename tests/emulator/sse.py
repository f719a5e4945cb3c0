"""Split an SSE body into frames: ("ping", None) or ("data", dict)."""

from __future__ import annotations

import json


def frames(body: str) -> list[tuple[str, dict | None]]:
    out: list[tuple[str, dict | None]] = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        if block == "event: ping":
            out.append(("ping", None))
        else:
            assert block.startswith("data: "), block
            out.append(("data", json.loads(block[len("data: ") :])))
    return out


def names(body: str) -> list[str]:
    return ["ping" if kind == "ping" else data["event"] for kind, data in frames(body)]


def events(body: str) -> list[dict]:
    return [data for kind, data in frames(body) if kind == "data"]
