"""create_app(settings) → Litestar. The lifespan owns the shared httpx client and the emulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from litestar import Litestar, Request, Response
from litestar.config.cors import CORSConfig
from litestar.exceptions import HTTPException
from litestar.middleware.base import DefineMiddleware

from bridge.conversations import open_store
from bridge.conversations.responses import open_response_store
from bridge.dify.client import DifyClient
from bridge.dify.control_transport import ControlTransport
from bridge.dify.stream_transport import StreamTransport
from bridge.engine import ChatService
from bridge.errors import BridgeError
from bridge.http.access import InFlight, RequestContext
from bridge.http.endpoints import not_found
from bridge.http.limits import RateLimiting
from bridge.http.metrics import DifyErrorCounting, MetricsController, prometheus_config
from bridge.http.readiness import Readiness
from bridge.http.refusals import CLIENT_CLOSED, client_gone, refusal_of
from bridge.http.routes.chat import CONVERSATION_HEADER, chat_completions
from bridge.http.routes.completions import create_completion
from bridge.http.routes.health import healthz, index, readyz
from bridge.http.routes.models import list_models, retrieve_model
from bridge.http.routes.responses import create_response, delete_response, retrieve_response
from bridge.logging import configure_logging
from bridge.routing import ModelRegistry
from bridge.settings import Settings, load_settings
from bridge.upstreams.pool import describe as describe_upstreams

log = structlog.get_logger("bridge")


def _error_response(error: BridgeError) -> Response[Any]:
    return Response(error.body(), status_code=error.status, headers=error.headers())


def _unseen(request: Request, status: int) -> Response[Any] | None:
    """The log line for an error nobody will receive (bridge.http.refusals): the edge already
    answered the client, or the client left. The response returned goes nowhere."""
    refusal = refusal_of(request.scope)
    if refusal is not None:
        log.warning(
            "request_refused", status=refusal.status, code=refusal.code, error=refusal.message
        )
        return Response(b"", status_code=refusal.status)
    if client_gone(request.scope) and status >= 500:
        log.info("client_closed_request", status=CLIENT_CLOSED)
        return Response(b"", status_code=CLIENT_CLOSED)
    return None


def _bridge_error(request: Request, exc: BridgeError) -> Response[Any]:
    if (unseen := _unseen(request, exc.status)) is not None:
        return unseen
    level = "warning" if exc.status < 500 else "error"
    getattr(log, level)("request_failed", status=exc.status, code=exc.code, error=exc.message)
    return _error_response(exc)


def _http_error(request: Request, exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if (unseen := _unseen(request, status)) is not None:
        return unseen
    if status == 413:
        message = "The request body is too large."
    elif status == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    elif status == 404:
        message, code = not_found(request.url.path)
        return _bridge_error(request, BridgeError(404, message, code=code, retryable=False))
    else:
        message = exc.detail or "Bad request."
    code = {413: "request_too_large", 405: "method_not_allowed"}.get(status)
    return _bridge_error(request, BridgeError(status, message, code=code, retryable=False))


def _unexpected(request: Request, exc: Exception) -> Response[Any]:
    if refusal_of(request.scope) is not None:
        return _unseen(request, 500)  # type: ignore[return-value]
    # A bug stays logged as one, even when the client has left meanwhile.
    log.exception("unexpected_error", error_type=type(exc).__name__)
    return _error_response(
        BridgeError(
            500,
            "The bridge hit an unexpected error; see its log for the request id.",
            code="internal_error",
            retryable=False,
        )
    )


def _secrets(settings: Settings) -> list[str]:
    """Every key the bridge knows, masked verbatim in logs whatever its shape."""
    keys = [*settings.api_keys, *(m.app_key for m in settings.models if m.app_key)]
    for key in (settings.dify_api_key, settings.metrics_key):
        if key:
            keys.append(key)
    return keys


def _cors(settings: Settings) -> CORSConfig | None:
    """Off unless origins are configured: browsers then may call the API directly."""
    if not settings.cors_origins:
        return None
    conversation_headers = [CONVERSATION_HEADER, settings.conversation_key_header]
    if settings.task_header:
        conversation_headers.append(settings.task_header)
    return CORSConfig(
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Request-Id", *conversation_headers],
        expose_headers=["X-Request-Id", CONVERSATION_HEADER],
        max_age=600,
    )


def _dify_http(
    settings: Settings,
    connections: int,
    transport: httpx.AsyncBaseTransport | None,
    *,
    control: bool = False,
) -> httpx.AsyncClient:
    """A client towards Dify with at most `connections` connections; waiting for a free one
    is bounded by the connect timeout like any other wait. Event streams go through the
    httptools transport (bridge.dify.stream_transport), control calls (stop, /info, …)
    through the lean h11 one (bridge.dify.control_transport)."""
    timeout = httpx.Timeout(
        settings.read_timeout, connect=settings.connect_timeout, pool=settings.connect_timeout
    )
    if transport is None:
        transport = (
            ControlTransport() if control else StreamTransport(max_connections=connections)
        )
    return httpx.AsyncClient(
        timeout=timeout, trust_env=False, transport=DifyErrorCounting(transport)
    )


# Demo mode's Dify: given the settings, an async context that yields the Dify `/v1` URL and
# the settings with the demo models added.
DemoUpstream = Callable[[Settings], contextlib.AbstractAsyncContextManager[tuple[str, Settings]]]


@dataclass(frozen=True)
class Extension:
    """What a package above this one adds to the app (the operator console, bridge.console):
    routes, middleware placed inside RequestContext (so it sees each request's ResponseWatch)
    and outside the rate limits, lifespans entered after the bridge's own (app.state is set
    up), and a template config."""

    route_handlers: Sequence[Any] = ()
    middleware: Sequence[Any] = ()
    lifespan: Sequence[Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]] = ()
    template_config: Any = None


def create_app(
    settings: Settings | None = None,
    *,
    dify_transport: httpx.AsyncBaseTransport | None = None,
    demo_upstream: DemoUpstream | None = None,
    extension: Extension | None = None,
) -> Litestar:
    """Build the bridge. `dify_transport` replaces the network towards Dify (tests replay
    recorded Dify responses through it). `demo_upstream` starts the Dify that demo mode
    serves (bridge.launch.demo): the HTTP layer itself never starts an emulator."""
    settings = settings or load_settings()
    extension = extension or Extension()
    configure_logging(settings.log_level, settings.log_format, secrets=_secrets(settings))
    in_flight = InFlight()
    rate_limiting = RateLimiting(settings.limits, settings.store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(
                _dify_http(settings, settings.upstream_connections, dify_transport)
            )
            control = await stack.enter_async_context(
                _dify_http(settings, settings.control_connections, dify_transport, control=True)
            )
            # Readiness probes get their own client: short timeouts, and their expected 401s
            # are not Dify errors worth counting.
            probe_http = await stack.enter_async_context(
                httpx.AsyncClient(trust_env=False, transport=dify_transport)
            )
            effective = settings
            base_url = settings.dify_api_url
            if settings.demo_mode:
                if demo_upstream is None:
                    raise RuntimeError(
                        "demo mode (no DIFY_API_URL) needs the launcher's app factory: "
                        "bridge.create_app or `dify-bridge serve`"
                    )
                base_url, effective = await stack.enter_async_context(demo_upstream(settings))
            assert base_url is not None
            app.state.registry = ModelRegistry(effective, base_url)
            store = await open_store(
                settings.store, ttl=settings.store_ttl, max_entries=settings.store_max_entries
            )
            stack.push_async_callback(store.close)
            # Responses API ids → Dify conversations, beside the conversation store (issue 11).
            app.state.response_store = await open_response_store(
                settings.store, ttl=settings.store_ttl, max_entries=settings.store_max_entries
            )
            stack.push_async_callback(app.state.response_store.close)
            dify = DifyClient(http, control, control_slots=settings.control_connections)
            service = ChatService(effective, dify, store)
            app.state.chat_service = service
            # Upstream groups: mark the ones down now, start health checks (docs/upstreams.md).
            await service.upstreams.start()
            stack.push_async_callback(service.upstreams.close)
            app.state.readiness = Readiness(
                app.state.registry,
                probe_http,
                settings.ready_cache_ttl,
                upstreams=lambda: describe_upstreams(service.upstreams),
            )
            log.info(
                "bridge_ready",
                models=app.state.registry.listed_ids(),
                demo=settings.demo_mode,
                passthrough=settings.passthrough,
            )
            try:
                yield
            finally:
                log.info("bridge_stopping", requests_in_flight=in_flight.count)
                # Requests uvicorn cancelled at the end of the grace period are still
                # writing their last frame and spawning their Dify stop calls.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5.0):
                        await in_flight.wait_idle()
                await service.drain()

    return Litestar(
        # structlog does the logging; Litestar's own config would start a queue-listener
        # thread per app (tests build hundreds of apps).
        logging_config=None,
        route_handlers=[
            chat_completions,
            create_response,
            retrieve_response,
            delete_response,
            create_completion,
            list_models,
            retrieve_model,
            healthz,
            readyz,
            index,
            MetricsController,
            *extension.route_handlers,
        ],
        lifespan=[lifespan, *extension.lifespan],
        on_shutdown=[rate_limiting.close],
        middleware=[
            prometheus_config().middleware,
            DefineMiddleware(RequestContext, in_flight=in_flight),
            *extension.middleware,
            # Inside RequestContext: a refused request is still logged and counted.
            *rate_limiting.middleware,
        ],
        exception_handlers={
            BridgeError: _bridge_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        cors_config=_cors(settings),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,
        template_config=extension.template_config,
        debug=False,
    )
