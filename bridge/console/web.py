"""The console's router: login, static files, and the pages (pages_*.py), all under /console
behind the admin session, CSRF tokens and the console's security headers."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.config.csrf import CSRFConfig
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.params import Body
from litestar.response import Redirect, Template

from bridge.console.security import (
    ConsoleHeaders,
    LoginRequired,
    key_matches,
    require_admin,
)
from bridge.console.state import SESSION_STORE, Console

STATIC = Path(__file__).parent / "static"
# Assets the login page needs; everything else under /static needs a session.
PUBLIC_ASSETS = frozenset({"console.css"})
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
_FILES = {
    p.relative_to(STATIC).as_posix(): p
    for p in STATIC.rglob("*")
    if p.is_file() and p.suffix in _TYPES
}
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def console_of(request: Request) -> Console:
    return request.app.state.console


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@get("/login", sync_to_thread=False)
def login_page(request: Request) -> Template:
    return Template("login.html", context={"error": None})


@post("/login", status_code=200)
async def login(request: Request, data: Form) -> Response[Any]:
    console = console_of(request)
    client = _client(request)
    wait = console.throttle.blocked_for(client)
    if wait > 0:
        return Template(
            "login.html",
            context={"error": f"Too many failed logins; try again in {int(wait) + 1} s."},
            status_code=429,
            headers={"Retry-After": str(int(wait) + 1)},
        )
    if not key_matches(data.get("admin_key", ""), console.admin_key):
        console.throttle.failed(client)
        return Template(
            "login.html", context={"error": "That is not the admin key."}, status_code=401
        )
    console.throttle.succeeded(client)
    request.set_session({"admin": True})
    return Redirect("/console", status_code=303)


@post("/logout", guards=[require_admin], status_code=303)
async def logout(request: Request) -> Redirect:
    request.clear_session()
    return Redirect("/console/login", status_code=303)


@get("/static/{name:path}", sync_to_thread=False)
def static(request: Request, name: str) -> Response[bytes]:
    name = name.lstrip("/")
    path = _FILES.get(name)
    if path is None:
        raise NotFoundException()
    if name not in PUBLIC_ASSETS:
        require_admin(request, None)  # type: ignore[arg-type]
    return Response(path.read_bytes(), media_type=_TYPES[path.suffix])


def _login_redirect(request: Request, exc: LoginRequired) -> Response[Any]:
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        return Redirect("/console/login", status_code=303)
    return Response(
        {
            "error": {
                "message": exc.detail,
                "type": "invalid_request_error",
                "param": None,
                "code": "login_required",
            }
        },
        status_code=401,
    )


def console_router(console: Console, pages: list[Any]) -> Router:
    # Shared by every worker and replica (the CSRF token is signed with it); changes with
    # the admin key, which also ends every session's CSRF token.
    secret = hashlib.sha256(b"bridge-console-csrf\0" + console.admin_key.encode()).hexdigest()
    csrf = CSRFConfig(
        secret=secret,
        cookie_name="bridge_console_csrf",
        cookie_path="/console",
        cookie_httponly=True,
        cookie_samesite="strict",
        header_name="x-csrftoken",
    )
    sessions = ServerSideSessionConfig(
        key="bridge_console",
        store=SESSION_STORE,
        max_age=console.config.session_seconds,
        path="/console",
        httponly=True,
        samesite="strict",
    )
    return Router(
        path="/console",
        route_handlers=[login_page, login, logout, static, *pages],
        middleware=[
            DefineMiddleware(ConsoleHeaders, public=console.config.public),
            sessions.middleware,
            DefineMiddleware(CSRFMiddleware, config=csrf),
        ],
        exception_handlers={LoginRequired: _login_redirect},
        include_in_schema=False,
    )
