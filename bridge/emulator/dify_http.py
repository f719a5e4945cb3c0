"""What every Dify 1.13.2 response looks like at the HTTP level, beyond its body.

- Headers on every response, errors and streams included (01, 10, 14a): `X-Version: 1.13.2`,
  `X-Env: PRODUCTION`, CORS (`Access-Control-Allow-Origin: *`, exposed X-Env / X-Trace-Id /
  X-Version) and `Vary: Cookie`.
- An unknown route is Flask's plain 404 HTML page; a known route with the wrong method is 405
  with Dify's JSON error body `{"code":"method_not_allowed",…}` (measured, issue 14 item 8).
"""

from __future__ import annotations

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


def dify_headers(app: ASGIApp) -> ASGIApp:
    """ASGI middleware adding DIFY_HEADERS to every HTTP response start."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in DIFY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


# The two handlers below also answer requests that matched no route, which the middleware
# (applied per route) never sees: they add the headers themselves.


def not_found_handler(_: Request, __: NotFoundException) -> Response:
    return Response(
        content=NOT_FOUND_PAGE, status_code=404, media_type="text/html", headers=DIFY_HEADERS
    )


def method_not_allowed_handler(_: Request, exc: MethodNotAllowedException) -> Response:
    body = {
        "code": "method_not_allowed",
        "message": "The method is not allowed for the requested URL.",
        "status": 405,
    }
    return Response(
        content=flask_json(body),
        status_code=405,
        media_type="application/json",
        headers={**DIFY_HEADERS, **(exc.headers or {})},
    )
