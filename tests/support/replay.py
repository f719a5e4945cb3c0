"""Serve recorded Dify responses byte for byte through an httpx MockTransport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx

from tests.support.recordings import Recording, load


class _Body(httpx.AsyncByteStream):
    """The recorded body in the pieces an SSE server would send (one event per chunk),
    optionally followed by a hang (Dify's silent 300 s cases)."""

    def __init__(self, body: bytes, hang: bool) -> None:
        self._body = body
        self._hang = hang

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._body.split(b"\n\n"):
            if piece:
                yield piece + b"\n\n"
            await asyncio.sleep(0)
        if self._hang:
            await asyncio.sleep(3600)


def recorded_response(recording: Recording, *, hang: bool = False) -> httpx.Response:
    headers = {k: v for k, v in recording.headers.items() if k not in ("content-length", "transfer-encoding")}
    return httpx.Response(recording.status, headers=headers, stream=_Body(recording.body, hang))


@dataclass
class DifyReplay:
    """Answers each Dify path with a recording; records the requests it saw."""

    routes: dict[str, Recording | Callable[[httpx.Request], httpx.Response]]
    mode: str = "advanced-chat"
    hang: bool = False
    requests: list[httpx.Request] = field(default_factory=list)

    @classmethod
    def of(cls, recording_id: str, path: str = "chat-messages", **kw) -> DifyReplay:
        return cls(routes={path: load(recording_id)}, **kw)

    def bodies(self, path: str) -> list[dict]:
        return [json.loads(r.content) for r in self.requests if r.url.path.endswith(path)]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/v1/")
        if path == "info":
            return httpx.Response(200, json={"name": "replay", "description": "", "tags": [], "mode": self.mode, "author_name": "t"})
        if path.endswith("/stop"):
            return httpx.Response(200, json={"result": "success"})
        route = self.routes.get(path)
        if route is None:
            return httpx.Response(404, json={"code": "not_found", "message": f"no replay for {path}", "status": 404})
        if callable(route):
            return route(request)
        return recorded_response(route, hang=self.hang)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
