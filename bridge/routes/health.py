"""Liveness, and the small index page that says what this is."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from bridge import __version__
from bridge.routing import ModelRegistry


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/")
async def index(request: Request) -> dict[str, Any]:
    registry: ModelRegistry = request.app.state.registry
    settings = registry.settings
    return {
        "name": "dify-openai-bridge",
        "version": __version__,
        "description": "Serves Dify apps as OpenAI chat models.",
        "openai_base_url": str(request.base_url).rstrip("/") + "/v1",
        "models": registry.listed_ids(),
        "passthrough": settings.passthrough,
        "dify": "built-in emulator" if settings.demo_mode else "configured",
    }
