"""Who may use the console: the admin session, the login throttle, the tunnel rule, and the
headers every console response carries."""

from __future__ import annotations

import hmac
import time
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

# No inline script or style anywhere: htmx's indicator style is off (base.html), uPlot
# styles through the CSSOM, which CSP does not govern.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
# Cloudflare's edge adds these to every request it proxies (and replaces a client's own), so
# they mark what came through a tunnel. A local client that sends them only locks itself out.
_TUNNEL_HEADERS = frozenset({b"cf-ray", b"cf-connecting-ip"})


class LoginRequired(HTTPException):
    status_code = 401
    detail = "Log in to the console first."


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    session = connection.scope.get("session") or {}
    if not isinstance(session, dict) or session.get("admin") is not True:
        raise LoginRequired()


def key_matches(given: str, admin_key: str) -> bool:
    return hmac.compare_digest(given.encode(), admin_key.encode())


class LoginThrottle:
    """Per client address: after `limit` failures within `window` s, logins get 429 until the
    window has passed. Through a tunnel all clients share cloudflared's address, so an
    attacker there delays the admin too: the safe side."""

    def __init__(self, limit: int = 5, window: float = 300.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, list[float]] = {}

    def blocked_for(self, client: str, now: float | None = None) -> float:
        now = now or time.monotonic()
        recent = [t for t in self._failures.get(client, []) if t > now - self.window]
        self._failures[client] = recent
        if len(recent) < self.limit:
            return 0.0
        return recent[0] + self.window - now

    def failed(self, client: str, now: float | None = None) -> None:
        self._failures.setdefault(client, []).append(now or time.monotonic())
        if len(self._failures) > 10_000:  # many addresses: forget the oldest entries
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


class ConsoleHeaders:
    """ASGI middleware of the console's router: 404 to tunnel traffic unless the console is
    public, the security headers, and `Secure` on its cookies when the request came over
    https (directly or per X-Forwarded-Proto from a proxy)."""

    def __init__(self, app: ASGIApp, public: bool) -> None:
        self.app = app
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        if not self.public and _TUNNEL_HEADERS & headers.keys():
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"error": "not found"}'})
            return
        https = scope.get("scheme") == "https" or headers.get(b"x-forwarded-proto") == b"https"

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = []
                for name, value in message.get("headers", ()):
                    if name.lower() == b"set-cookie" and https and b"secure" not in value.lower():
                        value = value + b"; Secure"
                    out.append((name, value))
                message["headers"] = out + _HEADERS
            await send(message)

        await self.app(scope, receive, secured)
