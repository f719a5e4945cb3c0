"""What an OpenAI request carries besides the query → Dify `inputs` and `files`.

`InputMapper.map()` is the single entry point the serving layer calls for every turn.
"""

from __future__ import annotations

from typing import Any

import msgspec

from bridge.dify.client import DifyClient
from bridge.openai.types import ChatCompletionRequest
from bridge.routing import ModelRoute
from bridge.settings import Settings


class MappedInputs(msgspec.Struct, kw_only=True):
    inputs: dict[str, Any]
    files: list[dict[str, Any]] = msgspec.field(default_factory=list)


def metadata_inputs(request: ChatCompletionRequest) -> dict[str, str]:
    """OpenAI `metadata` entries named `input.<variable>` become Dify inputs."""
    return {
        key.removeprefix("input."): value
        for key, value in (request.metadata or {}).items()
        if key.startswith("input.") and len(key) > len("input.")
    }


class InputMapper:
    def __init__(self, settings: Settings, dify: DifyClient) -> None:
        self.settings = settings
        self.dify = dify

    async def map(
        self, request: ChatCompletionRequest, route: ModelRoute, mode: str, user: str
    ) -> MappedInputs:
        # Priority: body `inputs` > `metadata` `input.*` > the model's static inputs.
        inputs = {**route.config.inputs, **metadata_inputs(request), **(request.inputs or {})}
        return MappedInputs(inputs=inputs)
