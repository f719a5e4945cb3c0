"""Prometheus metrics: Litestar's plugin for the HTTP series, plus the bridge's own.

The bridge's metrics live on prometheus_client's default registry, which Litestar's
`PrometheusController` serves at `/metrics` (and merges across workers when
`PROMETHEUS_MULTIPROC_DIR` is set).

Label values stay bounded: a model label is a configured id (or alias), everything a
passthrough client makes up is `passthrough`; error codes that do not look like codes are
`other`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import Counter, Gauge, Histogram

from bridge.errors import unauthorized
from bridge.routing import ModelRegistry, credential_from_header

PASSTHROUGH_LABEL = "passthrough"
# A chat request refused before its model was known (bad JSON, bad key, unknown model).
NO_MODEL_LABEL = "none"

_TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120)
_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)

CHAT_REQUESTS = Counter(
    "bridge_chat_requests_total",
    "Chat completion requests by model and HTTP status.",
    ["model", "status"],
)
CHAT_TTFT = Histogram(
    "bridge_chat_ttft_seconds",
    "Time to the first content or reasoning byte (streams) or to the response (non-streaming).",
    ["model", "stream"],
    buckets=_TTFT_BUCKETS,
)
CHAT_DURATION = Histogram(
    "bridge_chat_duration_seconds",
    "Chat completion requests from arrival to the last byte.",
    ["model", "stream"],
    buckets=_DURATION_BUCKETS,
)
CHAT_TOKENS = Counter(
    "bridge_chat_tokens_total",
    "Tokens Dify reported in its usage, by model and kind (prompt, completion).",
    ["model", "kind"],
)
ACTIVE_STREAMS = Gauge(
    "bridge_active_streams",
    "Chat completion streams being sent right now.",
    multiprocess_mode="livesum",
)
UPSTREAM_ERRORS = Counter(
    "bridge_upstream_errors_total",
    "Errors from Dify: its error code for HTTP errors, `unreachable` / `timeout` for the "
    "network, or the error code a running stream ended with.",
    ["code"],
)

EDGE_REFUSALS = Counter(
    "bridge_edge_refusals_total",
    "Requests and connections the server's edge answered itself (slow heads or bodies, "
    "oversized heads, malformed HTTP, the connection cap), by the status sent and its code.",
    ["status", "code"],
)

_CODE = re.compile(r"[a-z0-9_]{1,48}")


def code_label(code: str | None) -> str:
    if not code:
        return "unknown"
    return code if _CODE.fullmatch(code) else "other"


def model_label(registry: ModelRegistry | None, model: str | None) -> str:
    """The configured id a request named, or `passthrough` for ids only clients know."""
    if not model:
        return NO_MODEL_LABEL
    if registry is not None and registry.known(model):
        return model
    return PASSTHROUGH_LABEL


def prometheus_config() -> PrometheusConfig:
    return PrometheusConfig(
        app_name="dify-openai-bridge",
        prefix="bridge_http",
        # Route templates, not raw paths, and no series for paths nobody serves: both keep
        # label cardinality bounded whatever clients send.
        group_path=True,
        exclude_unhandled_paths=True,
        exclude=["^/metrics$"],
    )


def metrics_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Once bridge keys (or `BRIDGE_METRICS_KEY`) exist, `/metrics` needs one of them: model
    names, traffic and error rates are nobody else's business, also through a tunnel."""
    registry: ModelRegistry = connection.app.state.registry
    credential = credential_from_header(connection.headers.get("authorization"))
    if not registry.may_read_metrics(credential):
        raise unauthorized(
            "/metrics needs a key: send a bridge key or the BRIDGE_METRICS_KEY as a bearer "
            "token in the Authorization header."
        )


class MetricsController(PrometheusController):
    path = "/metrics"
    guards = [metrics_guard]  # noqa: RUF012 (Litestar reads the class attribute)


class _ErrorBody(msgspec.Struct):
    code: str | None = None


class _ReplayedBody(httpx.AsyncByteStream):
    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._body


class DifyErrorCounting(httpx.AsyncBaseTransport):
    """Wraps the transport towards Dify and counts what went wrong at the HTTP level.

    Counting here sees every Dify call (chat, info, parameters, uploads, stop) exactly once,
    whichever layer later turns the failure into a client error.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.ConnectTimeout:
            UPSTREAM_ERRORS.labels("unreachable").inc()
            raise
        except httpx.TimeoutException:
            UPSTREAM_ERRORS.labels("timeout").inc()
            raise
        except httpx.TransportError:
            UPSTREAM_ERRORS.labels("unreachable").inc()
            raise
        if response.status_code < 400:
            return response
        # Dify's code is in the (small) error body; read it and hand the same bytes on.
        try:
            raw = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
        finally:
            await response.aclose()
        try:
            code = msgspec.json.decode(raw, type=_ErrorBody).code
        except (msgspec.DecodeError, msgspec.ValidationError):
            code = None
        UPSTREAM_ERRORS.labels(code_label(code or f"http_{response.status_code}")).inc()
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_ReplayedBody(raw),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()
