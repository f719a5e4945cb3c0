"""The Dify 1.13.2 console recordings (tests/fixtures/recordings/console, copied from shared/)
as httpx responses, and a transport that answers a console client with them while checking
what the client sends the way Dify does (base64 password, CSRF header = cookie)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from tests.support.recordings import RECORDINGS, load

CONSOLE = RECORDINGS / "console"


def raw_headers(name: str) -> list[tuple[str, str]]:
    """Every response header line, repeated ones (Set-Cookie) included."""
    (path,) = CONSOLE.glob(f"{name}*.txt")
    raw = path.read_text(encoding="utf-8").partition("# ---- raw response (headers + body) ----\n")[
        2
    ]
    head = raw.partition("\n\n")[0].split("\n")[1:]
    return [(k, v) for k, _, v in (line.partition(": ") for line in head)]


def response(name: str) -> httpx.Response:
    recording = load(f"console/{name}")
    headers = [(k, v) for k, v in raw_headers(name) if k.lower() != "content-length"]
    return httpx.Response(recording.status, headers=headers, content=recording.body)


def body(name: str) -> dict:
    return load(f"console/{name}").json


@dataclass
class RecordedConsole:
    """Routes requests to recordings. `routes` maps (method, path regex) → recording name or a
    callable(request) → recording name; unmatched requests fail the test."""

    password: str
    routes: dict[tuple[str, str], str | Callable[[httpx.Request], str]]
    seen: list[httpx.Request] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path = request.url.path.removeprefix("/console/api")
        if path == "/login":
            sent = json.loads(request.content)["password"]
            try:
                decoded = base64.b64decode(sent, validate=True).decode()
            except (binascii.Error, ValueError):
                return response("03b")  # plaintext: "Invalid encrypted data"
            if decoded != self.password:
                return response("03a")
        elif path not in ("/setup", "/init", "/refresh-token"):
            cookies = _cookies(request)
            if "access_token" not in cookies:
                return response("04c")
            if request.headers.get("x-csrf-token") != cookies.get("csrf_token"):
                return response("04b")
        for (method, pattern), answer in self.routes.items():
            if request.method == method and re.fullmatch(pattern, path):
                return response(answer(request) if callable(answer) else answer)
        raise AssertionError(f"no recording for {request.method} {path}")


def _cookies(request: httpx.Request) -> dict[str, str]:
    header = request.headers.get("cookie") or ""
    pairs = (part.strip().partition("=") for part in header.split(";") if part.strip())
    return {k: v for k, _, v in pairs}


APP = r"/apps/[0-9a-f-]{36}"

# A Dify that is set up and lets the admin in: the happy path of 01a → 03c → 05a → 07a/07b → 08a.
HAPPY: dict[tuple[str, str], str | Callable[[httpx.Request], str]] = {
    ("GET", "/setup"): "01a",
    ("POST", "/login"): "03c",
    ("POST", "/apps/imports"): "05a",
    ("GET", APP): "07b",
    ("POST", APP + "/workflows/publish"): "07a",
    ("GET", APP + "/api-keys"): "08b",
    ("POST", APP + "/api-keys"): "08a",
    ("POST", "/logout"): "10e",
}
