"""What every Service API handler shares: the emulator, the app the caller's key opens, the
JSON body, JSON and SSE responses, and the handler turning a `DifyError` into Dify's answer."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.response import Stream

from . import errors
from .dsl import AppSpec
from .payload import parse_json_body
from .service import Emulator
from .wire import flask_json


def emulator_of(request: Request) -> Emulator:
    return request.app.state.emulator


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=flask_json(obj), status_code=status, media_type="application/json", headers=headers
    )


def dify_error_handler(request: Request, exc: errors.DifyError) -> Response:
    profile = emulator_of(request).profile
    headers = None
    if exc.status == 401 and profile.www_authenticate:
        headers = {"WWW-Authenticate": 'Bearer realm="api"'}
    return json_response(exc.body_for(profile), exc.status, headers)


def sse(body) -> Stream:
    return Stream(body, media_type="text/event-stream")  # Litestar adds "; charset=utf-8"


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def app_of(request: Request) -> AppSpec:
    """The app whose key the request carries (401 otherwise, as recordings 10/11a/11b)."""
    return emulator_of(request).authenticate(request.headers.get("authorization"))


async def json_body(request: Request) -> dict[str, Any]:
    return parse_json_body(request.headers.get("content-type"), await request.body())
