"""What every Dify response looks like at the HTTP level, beyond its body.

- Headers on every response, errors and streams included (01, 10, 14a): `X-Version: 1.13.2`
  (the emulated release: versions.py), `X-Env: PRODUCTION`, CORS (`Access-Control-Allow-Origin:
  *`, exposed X-Env / X-Trace-Id / X-Version) and `Vary: Cookie`.
- An unknown route is Flask's plain 404 HTML page; a known route with the wrong method is 405
  with Dify's JSON error body `{"code":"method_not_allowed",…}` (measured, issue 14 item 8).
"""

from __future__ import annotations

from collections.abc import Callable

from litestar import Request, Response
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from .wire import flask_json

DIFY_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "X-Env, X-Trace-Id, X-Version",
    "X-Version": "1.13.2",
    "X-Env": "PRODUCTION",
    "Vary": "Cookie",
}

NOT_FOUND_PAGE = (
    "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    "<p>The requested URL was not found on the server. If you entered the URL manually "
    "please check your spelling and try again.</p>\n"
)


def headers_of(version: str) -> dict[str, str]:
    """DIFY_HEADERS with the emulated release in X-Version."""
    return {**DIFY_HEADERS, "X-Version": version}


def dify_headers(version: str) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware adding DIFY_HEADERS (X-Version = `version`) to every HTTP response start."""
    fixed = headers_of(version)

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = MutableScopeHeaders.from_message(message)
                    for name, value in fixed.items():
                        headers[name] = value
                await send(message)

            await app(scope, receive, send_with_headers)

        return middleware

    return wrap


def _version(request: Request) -> str:
    emulator = getattr(request.app.state, "emulator", None)
    return emulator.settings.profile.version if emulator is not None else DIFY_HEADERS["X-Version"]


def not_found_page(request: Request) -> Response:
    return Response(
        content=NOT_FOUND_PAGE,
        status_code=404,
        media_type="text/html",
        headers=headers_of(_version(request)),
    )


# The two handlers below also answer requests that matched no route, which the middleware
# (applied per route) never sees: they add the headers themselves.


def not_found_handler(request: Request, __: NotFoundException) -> Response:
    return not_found_page(request)


def method_not_allowed_handler(request: Request, exc: MethodNotAllowedException) -> Response:
    body = {
        "code": "method_not_allowed",
        "message": "The method is not allowed for the requested URL.",
        "status": 405,
    }
    return Response(
        content=flask_json(body),
        status_code=405,
        media_type="application/json",
        headers={**headers_of(_version(request)), **(exc.headers or {})},
    )
