"""GET /v1/models and /v1/models/{id}."""

from __future__ import annotations

from litestar import Request, get
from litestar.params import FromPath

from bridge.errors import model_not_found
from bridge.openai.types import Model, ModelList
from bridge.routing import ModelRegistry

# Fixed so that listings are stable across restarts (2025-01-01T00:00:00Z).
CREATED = 1735689600


def _model(registry: ModelRegistry, model_id: str) -> Model:
    config = registry.models.get(registry.settings.aliases.get(model_id, model_id))
    return Model(id=model_id, created=CREATED, owned_by=config.owned_by if config else "dify")


@get(["/v1/models", "/models"])
async def list_models(request: Request) -> ModelList:
    registry: ModelRegistry = request.app.state.registry
    return ModelList(data=[_model(registry, model_id) for model_id in registry.listed_ids()])


@get(["/v1/models/{model_id:str}", "/models/{model_id:str}"])
async def retrieve_model(request: Request, model_id: FromPath[str]) -> Model:
    registry: ModelRegistry = request.app.state.registry
    if registry.known(model_id) or (registry.settings.passthrough and not registry.managed_ids):
        return _model(registry, model_id)
    raise model_not_found(model_id)
