"""create_app(settings) → Litestar. The lifespan owns the shared httpx client and the emulator."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import structlog
from litestar import Litestar, Request, Response
from litestar.config.cors import CORSConfig
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from bridge.conversations import open_store
from bridge.dify.client import DifyClient
from bridge.errors import BridgeError
from bridge.logging import configure_logging
from bridge.routes.chat import chat_completions
from bridge.routes.health import healthz, index
from bridge.routes.models import list_models, retrieve_model
from bridge.routing import ModelRegistry
from bridge.serving import ChatService
from bridge.settings import Settings, load_settings

log = structlog.get_logger("bridge")


def _error_response(error: BridgeError) -> Response[Any]:
    return Response(error.body(), status_code=error.status, headers=error.headers())


def _bridge_error(request: Request, exc: BridgeError) -> Response[Any]:
    level = "warning" if exc.status < 500 else "error"
    getattr(log, level)("request_failed", status=exc.status, code=exc.code, error=exc.message)
    return _error_response(exc)


def _http_error(request: Request, exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status == 413:
        message = "The request body is too large."
    elif status == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    elif status == 404:
        message = f"Unknown path {request.url.path}; the OpenAI API lives under /v1."
    else:
        message = exc.detail or "Bad request."
    code = {413: "request_too_large", 404: "not_found", 405: "method_not_allowed"}.get(status)
    return _bridge_error(request, BridgeError(status, message, code=code, retryable=False))


def _unexpected(request: Request, exc: Exception) -> Response[Any]:
    log.exception("unexpected_error", error_type=type(exc).__name__)
    return _error_response(
        BridgeError(
            500,
            "The bridge hit an unexpected error; see its log for the request id.",
            code="internal_error",
            retryable=False,
        )
    )


class RequestContext:
    """ASGI middleware: request id in and out (`X-Request-Id`), one access log line per request,
    written when the response body (a whole stream, for SSE) has been sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = (
            incoming
            if 0 < len(incoming) <= 128 and incoming.isprintable()
            else ("req_" + uuid.uuid4().hex)
        )
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 0
        first_byte: float | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, first_byte
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            elif message["type"] == "http.response.body":
                if first_byte is None and message.get("body"):
                    first_byte = time.perf_counter()
                if not message.get("more_body", False):
                    log.info(
                        "request",
                        method=scope["method"],
                        path=scope["path"],
                        status=status,
                        ttfb_ms=round(((first_byte or time.perf_counter()) - started) * 1000, 1),
                        duration_ms=round((time.perf_counter() - started) * 1000, 1),
                    )
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(
    settings: Settings | None = None,
    *,
    dify_transport: httpx.AsyncBaseTransport | None = None,
) -> Litestar:
    """Build the bridge. `dify_transport` replaces the network towards Dify (tests replay
    recorded Dify responses through it)."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    timeout=timeout, limits=limits, trust_env=False, transport=dify_transport
                )
            )
            effective = settings
            base_url = settings.dify_api_url
            if settings.demo_mode:
                from bridge.demo import demo_models, running_emulator

                base_url, apps = await stack.enter_async_context(running_emulator(settings))
                effective = msgspec.structs.replace(settings, models=demo_models(settings, apps))
            assert base_url is not None
            app.state.registry = ModelRegistry(effective, base_url)
            store = await open_store(
                settings.store, ttl=settings.store_ttl, max_entries=settings.store_max_entries
            )
            stack.push_async_callback(store.close)
            service = ChatService(effective, DifyClient(http), store)
            app.state.chat_service = service
            log.info(
                "bridge_ready",
                models=app.state.registry.listed_ids(),
                demo=settings.demo_mode,
                passthrough=settings.passthrough,
            )
            try:
                yield
            finally:
                await service.drain()

    cors = CORSConfig(allow_origins=settings.cors_origins) if settings.cors_origins else None
    return Litestar(
        route_handlers=[chat_completions, list_models, retrieve_model, healthz, index],
        lifespan=[lifespan],
        middleware=[RequestContext],
        exception_handlers={
            BridgeError: _bridge_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        cors_config=cors,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,
        debug=False,
    )
