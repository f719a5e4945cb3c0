"""GET /v1/models and /v1/models/{id}.

Like OpenAI, both need a key once the bridge has keys (`ModelRegistry.model_reader`), and a
model that does not exist is a 404 `model_not_found` (`ModelRegistry.answers_to`: in
passthrough mode a caller with its own `app-…` key is answered for any well-formed name, since
its Dify app serves every name; docs/operations.md#models).
"""

from __future__ import annotations

from litestar import Request, get
from litestar.params import FromPath

from bridge.errors import model_not_found
from bridge.openai.types import Model, ModelList
from bridge.routing import ModelRegistry, credential_from_header

# Fixed so that listings are stable across restarts (2025-01-01T00:00:00Z).
CREATED = 1735689600
# How much of an unknown id the 404 repeats (ids come from the URL, up to the head limit).
SHOWN_ID = 64


def _model(registry: ModelRegistry, model_id: str) -> Model:
    config = registry.models.get(registry.settings.aliases.get(model_id, model_id))
    return Model(id=model_id, created=CREATED, owned_by=config.owned_by if config else "dify")


def _reader(request: Request, registry: ModelRegistry) -> bool | None:
    return registry.model_reader(credential_from_header(request.headers.get("authorization")))


@get(["/v1/models", "/models"])
async def list_models(request: Request) -> ModelList:
    registry: ModelRegistry = request.app.state.registry
    _reader(request, registry)  # 401 without a usable key once bridge keys exist
    return ModelList(data=[_model(registry, model_id) for model_id in registry.listed_ids()])


@get(["/v1/models/{model_id:str}", "/models/{model_id:str}"])
async def retrieve_model(request: Request, model_id: FromPath[str]) -> Model:
    registry: ModelRegistry = request.app.state.registry
    if registry.answers_to(model_id, _reader(request, registry)):
        return _model(registry, model_id)
    shown = model_id if len(model_id) <= SHOWN_ID else model_id[:SHOWN_ID] + "…"
    raise model_not_found(shown)
