"""The bridge app as users start it: the HTTP app, with the built-in Dify emulator as its
upstream in demo mode (no `DIFY_API_URL`)."""

from __future__ import annotations

import httpx
from litestar import Litestar

from bridge.console import console_extension
from bridge.http.app import create_app as create_http_app
from bridge.launch.demo import demo_upstream
from bridge.settings import Settings, load_settings


def create_app(
    settings: Settings | None = None,
    *,
    dify_transport: httpx.AsyncBaseTransport | None = None,
) -> Litestar:
    """Build the bridge. `dify_transport` replaces the network towards Dify (tests replay
    recorded Dify responses through it)."""
    settings = settings or load_settings()
    return create_http_app(
        settings,
        dify_transport=dify_transport,
        demo_upstream=demo_upstream,
        extension=console_extension(settings),  # the operator console at /console
    )
