"""Litestar handlers for the emulated Dify console API (`/console/api`), as recorded from Dify
1.13.2 (recordings console/). The rules live in console_state.py.

Mounted as `CONSOLE_ROUTER` next to the Service API routes. The console state is created on
first use from the emulator's app (a fresh, not-yet-set-up instance) or up front with
`console_of(app, init_password=...)`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from litestar import Litestar, Request, Response, delete, get, post
from litestar.datastructures import Cookie, ResponseHeader
from litestar.params import FromPath
from litestar.router import Router

from .console_records import ConsoleReply, restx_error, setup_error
from .console_state import ACCESS_TTL, REFRESH_TTL, ConsoleState
from .wire import flask_json

_SECRET_FIELDS = ("password",)


def console_of(app: Litestar, init_password: str | None = None) -> ConsoleState:
    """The console side of an emulator app, created on first use. `init_password` plays the
    server's INIT_PASSWORD; it only applies when this call creates the state."""
    state = app.state.get("console")
    if state is None:
        state = ConsoleState(app.state.emulator, init_password=init_password)
        app.state.console = state
    return state


def _state(request: Request) -> ConsoleState:
    return console_of(request.app)


def _reply(body: Any, status: int = 200, *, newline: bool = True, **kwargs: Any) -> Response:
    content = flask_json(body) if newline else flask_json(body).rstrip(b"\n")
    return Response(content, status_code=status, media_type="application/json", **kwargs)


def console_error_handler(_: Request, exc: ConsoleReply) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="api"'} if exc.challenge else None
    return _reply(exc.body, exc.status, newline=exc.newline, headers=headers)


async def _json(request: Request, *, required: bool = False) -> dict[str, Any]:
    """The JSON body; {} when none was sent, unless `required` (07d: 415 without one)."""
    body = await request.body()
    is_json = "application/json" in (request.headers.get("content-type") or "")
    if not is_json:
        if required:
            raise restx_error(
                "unsupported_media_type",
                "Did not attempt to load JSON data because the request Content-Type was not "
                "'application/json'.",
                415,
            )
        return {}
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        raise restx_error(
            "bad_request",
            "The browser (or proxy) sent a request that this server could not understand.",
            400,
        ) from None
    return payload if isinstance(payload, dict) else {}


def _login_required(request: Request) -> str:
    """The caller's account: access token (cookie or Bearer, 04d), then the CSRF pair."""
    state = _state(request)
    state.require_setup()
    access = request.cookies.get("access_token")
    authorization = request.headers.get("authorization") or ""
    if not access and authorization.lower().startswith("bearer "):
        access = authorization[7:].strip()
    account = state.account_of(access)
    csrf_header = request.headers.get("x-csrf-token")
    state.check_csrf(account, csrf_header, request.cookies.get("csrf_token"))
    return account


def _session_cookies(access: str, refresh: str, csrf: str) -> list[Cookie]:
    common: dict[str, Any] = {"path": "/", "samesite": "lax"}
    return [
        Cookie(key="access_token", value=access, max_age=ACCESS_TTL, httponly=True, **common),
        Cookie(key="refresh_token", value=refresh, max_age=REFRESH_TTL, httponly=True, **common),
        Cookie(key="csrf_token", value=csrf, max_age=ACCESS_TTL, **common),
    ]


async def record_console_request(request: Request) -> None:
    """Journal every console call like the Service API's, passwords blanked out."""
    payload = None
    if "application/json" in (request.headers.get("content-type") or ""):
        try:
            payload = json.loads(await request.body() or b"null")
        except ValueError:
            payload = None
    if isinstance(payload, dict):
        payload = {k: ("REDACTED" if k in _SECRET_FIELDS else v) for k, v in payload.items()}
    request.app.state.emulator.store.journal.append(
        {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "json": payload,
            "form": None,
            "time": time.time(),
            "app": None,
        }
    )


# --- setup, init, login ----------------------------------------------------------------------


@get("/setup")
async def setup_status(request: Request) -> Response:
    state = _state(request)
    if state.is_set_up:
        return _reply({"step": "finished", "setup_at": state.setup_at}, newline=False)
    return _reply({"step": "not_started", "setup_at": None}, newline=False)


@post("/setup")
async def setup(request: Request) -> Response:
    try:
        payload = await _json(request)
    except ConsoleReply:
        message = "Validation error for parameter 'payload'"
        raise setup_error("validation_error", message, 422, details=message) from None
    _state(request).setup(payload, request.cookies.get("session"))
    return _reply({"result": "success"}, 201, newline=False)


@get("/init")
async def init_status(request: Request) -> Response:
    status = _state(request).init_status(request.cookies.get("session"))
    return _reply({"status": status}, newline=False)


@post("/init")
async def validate_init(request: Request) -> Response:
    payload = await _json(request)
    session = _state(request).validate_init(payload.get("password"))
    return _reply(
        {"result": "success"},
        201,
        newline=False,
        cookies=[Cookie(key="session", value=session, httponly=True, path="/", samesite="lax")],
    )


@post("/login")
async def login(request: Request) -> Response:
    tokens = _state(request).login(await _json(request))
    return _reply({"result": "success"}, newline=False, cookies=_session_cookies(*tokens))


@post("/refresh-token")
async def refresh_token(request: Request) -> Response:
    access, refresh, csrf = _state(request).rotate(request.cookies.get("refresh_token"))
    return _reply(
        {"result": "success"}, newline=False, cookies=_session_cookies(access, refresh, csrf)
    )


@post("/logout")
async def logout(request: Request) -> Response:
    state = _state(request)
    state.logout(state.account_of(request.cookies.get("access_token")))  # no CSRF check
    cleared = [
        Cookie(key=name, value="", expires=0, httponly=name != "csrf_token", path="/",
               samesite="lax")
        for name in ("access_token", "refresh_token", "csrf_token")
    ]  # fmt: skip
    return _reply({"result": "success"}, newline=False, cookies=cleared)


# --- apps ------------------------------------------------------------------------------------


@get("/apps")
async def list_apps(request: Request) -> Response:
    _login_required(request)
    query = request.query_params
    try:
        page = max(1, int(query.get("page") or 1))
        limit = min(100, max(1, int(query.get("limit") or 20)))
    except ValueError:
        raise restx_error("invalid_param", "page and limit must be integers", 400) from None
    return _reply(_state(request).list_apps(page, limit, query.get("name"), query.get("mode")))


@get("/apps/{app_id:str}")
async def app_detail(request: Request, app_id: FromPath[str]) -> Response:
    _login_required(request)
    app = _state(request).app(app_id, restx_error("app_not_found", "App not found.", 404))
    return _reply(app.detail(str(request.base_url).rstrip("/") + "/v1"))


@delete("/apps/{app_id:str}", status_code=204)
async def delete_app(request: Request, app_id: FromPath[str]) -> None:
    _login_required(request)
    _state(request).delete_app(app_id)


@post("/apps/imports")
async def import_app(request: Request) -> Response:
    _login_required(request)
    status, body = _state(request).start_import(await _json(request, required=True))
    return _reply(body, status)


@post("/apps/imports/{import_id:str}/confirm")
async def confirm_import(request: Request, import_id: FromPath[str]) -> Response:
    _login_required(request)
    status, body = _state(request).confirm_import(import_id)
    return _reply(body, status)


@post("/apps/{app_id:str}/workflows/publish")
async def publish(request: Request, app_id: FromPath[str]) -> Response:
    _login_required(request)
    await _json(request, required=True)
    return _reply(_state(request).publish(app_id, request.url.path))


@get("/apps/{app_id:str}/api-keys")
async def list_keys(request: Request, app_id: FromPath[str]) -> Response:
    _login_required(request)
    app = _state(request).keys_of(app_id, request.url.path)
    return _reply({"data": [k.to_api() for k in app.keys]})


@post("/apps/{app_id:str}/api-keys")
async def create_key(request: Request, app_id: FromPath[str]) -> Response:
    _login_required(request)
    key = _state(request).create_key(app_id, request.url.path)
    return _reply(key.to_api(), 201)


@delete("/apps/{app_id:str}/api-keys/{key_id:str}", status_code=204)
async def delete_key(request: Request, app_id: FromPath[str], key_id: FromPath[str]) -> None:
    _login_required(request)
    _state(request).delete_key(app_id, key_id, request.url.path)


CONSOLE_ROUTER = Router(
    path="/console/api",
    route_handlers=[
        setup_status,
        setup,
        init_status,
        validate_init,
        login,
        refresh_token,
        logout,
        list_apps,
        app_detail,
        delete_app,
        import_app,
        confirm_import,
        publish,
        list_keys,
        create_key,
        delete_key,
    ],
    before_request=record_console_request,
    exception_handlers={ConsoleReply: console_error_handler},
    response_headers=[
        ResponseHeader(name="X-Version", value="1.13.2"),
        ResponseHeader(name="X-Env", value="PRODUCTION"),
    ],
)
