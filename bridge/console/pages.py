"""The read-mostly pages: overview (with its live figures), requests, connect, playground."""

from __future__ import annotations

import os
import time
from importlib.metadata import version
from typing import Any

from litestar import Request, get
from litestar.response import Template

from bridge.console.security import require_admin
from bridge.console.state import Console
from bridge.console.upstreams import InfoCache, model_views
from bridge.http.metrics import ACTIVE_STREAMS

_info = InfoCache()


def _console(request: Request) -> Console:
    return request.app.state.console


def base_url(request: Request) -> str:
    """The public tunnel URL when the bridge runs with one (set by `dify-bridge start`), else
    the URL this page was loaded from."""
    tunnel = os.environ.get("BRIDGE_PUBLIC_URL", "").strip().rstrip("/")
    return tunnel or str(request.base_url).rstrip("/")


def _process_facts(request: Request, console: Console) -> dict[str, Any]:
    settings = request.app.state.registry.settings
    mode = "demo (built-in emulator)" if settings.demo_mode else "managed"
    if settings.passthrough:
        mode += " + passthrough"
    return {
        "version": version("dify-openai-bridge"),
        "uptime_s": int(time.time() - console.started),
        "store": "redis" if console.config.redis else "sqlite",
        "mode": mode,
        "pid": os.getpid(),
    }


def _active_streams() -> int:
    return int(ACTIVE_STREAMS._value.get())  # type: ignore[attr-defined]


@get("/", guards=[require_admin])
async def overview(request: Request) -> Template:
    console = _console(request)
    saved = {m.id for m in await console.models.all()} if console.models else set()
    saved |= {a for m in (await console.models.all() if console.models else []) for a in m.aliases}
    views = await model_views(
        request.app.state.registry,
        request.app.state.chat_service.dify,
        _info,
        saved,
        list(console.requests.ring),
    )
    return Template(
        "overview.html",
        context={
            "page": "overview",
            "models": views,
            "facts": _process_facts(request, console),
            "live": console.requests.live(),
            "active_streams": _active_streams(),
        },
    )


@get("/live", guards=[require_admin], sync_to_thread=False)
def live(request: Request) -> dict[str, Any]:
    """The overview polls this every few seconds (figures and the hour's series)."""
    console = _console(request)
    return {
        **console.requests.live(),
        "active_streams": _active_streams(),
        "uptime_s": int(time.time() - console.started),
    }


def _filters(request: Request) -> dict[str, str]:
    return {
        name: request.query_params.get(name, "")[:200]
        for name in ("model", "key_name", "status", "request_id", "conversation_id")
    }


@get("/requests", guards=[require_admin], sync_to_thread=False)
def requests_page(request: Request) -> Template:
    console = _console(request)
    filters = _filters(request)
    rows = console.requests.recent(200, **filters)
    partial = request.headers.get("hx-request") == "true"
    return Template(
        "requests_rows.html" if partial else "requests.html",
        context={
            "page": "requests",
            "rows": rows,
            "filters": filters,
            "logging": console.config.log_conversations,
        },
    )


@get("/connect", guards=[require_admin], sync_to_thread=False)
def connect(request: Request) -> Template:
    registry = request.app.state.registry
    models = registry.listed_ids()
    return Template(
        "connect.html",
        context={
            "page": "connect",
            "base": base_url(request),
            "model": models[0] if models else "o1",
            "models": models,
        },
    )


@get("/playground", guards=[require_admin])
async def playground(request: Request) -> Template:
    console = _console(request)
    assert console.keys is not None
    # A bridge token for this browser only, gone with the session: the page calls the
    # bridge's own API like any client, and never sees a Dify key.
    token = await console.keys.session_token(console.config.session_seconds)
    console.lookups = True
    return Template(
        "playground.html",
        context={
            "page": "playground",
            "models": request.app.state.registry.listed_ids(),
            "token": token,
            "base": str(request.base_url).rstrip("/"),
        },
    )
