"""Liveness, readiness, and the small index page that says what this is."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from litestar import Request, Response, get

from bridge.errors import BridgeError
from bridge.http.readiness import Readiness
from bridge.routing import ModelRegistry, credential_from_header


@get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and serving HTTP; says nothing about Dify (see /readyz)."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(request: Request) -> Response[dict[str, Any]]:
    """200 or 503 for everyone (probes send no key); which models and which Dify URL failed
    only for a caller who may list the models, as on `/`."""
    readiness: Readiness = request.app.state.readiness
    report = await readiness.report()
    body = report.body()
    if not _may_list_models(request):
        body = {
            "status": body["status"],
            "age_seconds": body["age_seconds"],
            "detail": "send a bridge key to see the checks",
        }
    return Response(body, status_code=200 if report.ready else 503)


def _may_list_models(request: Request) -> bool:
    registry: ModelRegistry = request.app.state.registry
    try:
        registry.model_reader(credential_from_header(request.headers.get("authorization")))
    except BridgeError:
        return False
    return True


@get("/")
async def index(request: Request) -> dict[str, Any]:
    """What this is. The models are listed only to a caller who may list them (like
    `/v1/models`): once bridge keys exist, the page is public but the model names are not."""
    registry: ModelRegistry = request.app.state.registry
    settings = registry.settings
    page: dict[str, Any] = {
        "name": "dify-openai-bridge",
        "version": version("dify-openai-bridge"),
        "description": "Serves Dify apps as OpenAI chat models.",
        "openai_base_url": str(request.base_url).rstrip("/") + "/v1",
        "api_key_required": bool(settings.api_keys),
        "passthrough": settings.passthrough,
        "dify": "built-in emulator" if settings.demo_mode else "configured",
    }
    if not _may_list_models(request):
        return page
    return {**page, "models": registry.listed_ids()}
