"""What an OpenAI request carries besides the query → Dify `inputs` and `files`.

`InputMapper.map()` is the single entry point the serving layer calls for every turn.

Inputs — where a Dify input variable's value comes from; a higher source wins:

1. the body field `inputs` (an object; with the openai SDK `extra_body={"inputs": {...}}`);
2. OpenAI `metadata` entries named `input.<variable>` (strings);
3. the system/developer messages' text, when the model config names `system_input: <var>`;
4. the model's static `inputs:` in the bridge config.

The result is checked against the app's `GET /parameters` (cached per app for
`parameters_cache_ttl` seconds): a missing required variable, a `select` value outside its
options, a non-number for a `number`, a text over `max_length` → 400 naming the variable.
Numbers are coerced from strings (metadata values are always strings), numbers to text for text
fields. For workflow and completion apps the variable that receives the user's message
(`query_input`) counts as provided. If `/parameters` cannot be read, the request goes on
unchecked (a warning is logged).

System and developer messages: their text goes to the `system_input` variable when the model
names one the app has; otherwise it is returned as `MappedInputs.system_prompt` for the
conversation layer to put into the query. Never dropped.

Files: only the last user message's `image_url` / `file` / `input_audio` parts. http(s) image
URLs go to Dify as `remote_url`; inline data is decoded, checked against the app's file-upload
settings and size limits, uploaded once per (app, user, content) and sent as `local_file`.
See docs/inputs-and-files.md.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog

from bridge.dify.client import DifyAPIError, DifyClient, DifyTarget
from bridge.inputs.file_policy import admit_files
from bridge.inputs.files import turn_files
from bridge.inputs.ignored import ignored_fields
from bridge.inputs.parameters import AppParameters, ParametersCache
from bridge.inputs.system import system_text
from bridge.inputs.uploads import FileUploader
from bridge.inputs.validate import collect_inputs, metadata_inputs, validate_inputs
from bridge.openai.types import ChatCompletionRequest
from bridge.routing import ModelRoute
from bridge.settings import Settings
from bridge.translate.request import CHAT_MODES

__all__ = ["InputMapper", "MappedInputs", "metadata_inputs"]

log = structlog.get_logger("bridge.inputs")


class MappedInputs(msgspec.Struct, kw_only=True):
    inputs: dict[str, Any]
    files: list[dict[str, Any]] = msgspec.field(default_factory=list)
    # System/developer text with no input variable to go to: the caller puts it in the query.
    system_prompt: str | None = None


def _system_variable(route: ModelRoute, parameters: AppParameters | None) -> str | None:
    variable = route.config.system_input
    if not variable or parameters is None or parameters.field(variable) is not None:
        return variable
    # Dify ignores inputs its form does not declare: the text would vanish, so keep it for
    # the query instead.
    log.warning("system_input_not_in_app", model=route.model, variable=variable)
    return None


class InputMapper:
    def __init__(self, settings: Settings, dify: DifyClient) -> None:
        self.settings = settings
        self.dify = dify
        self.parameters = ParametersCache(dify, settings.parameters_cache_ttl)
        self.uploader = FileUploader(dify)

    async def map(
        self, request: ChatCompletionRequest, route: ModelRoute, mode: str, user: str
    ) -> MappedInputs:
        if ignored := ignored_fields(request):
            log.debug("openai_fields_ignored", fields=ignored)
        files = turn_files(request)  # decode errors are the client's, whatever the app says
        parameters = await self.parameters.get(route.target)
        system = system_text(request.messages)
        system_variable = _system_variable(route, parameters)
        values = collect_inputs(
            body=request.inputs,
            metadata=request.metadata,
            static=route.config.inputs,
            system_variable=system_variable,
            system=system,
        )
        if parameters is None:
            inputs = {name: sourced.value for name, sourced in values.items()}
        else:
            provided = frozenset() if mode in CHAT_MODES else frozenset({route.config.query_input})
            inputs = validate_inputs(values, parameters, provided=provided)
        admitted = admit_files(files, parameters, mode=mode)
        dify_files = await self.uploader.dify_files(
            route.target, admitted, user, managed=route.managed
        )
        return MappedInputs(
            inputs=inputs,
            files=dify_files,
            system_prompt=None if system_variable else system,
        )

    def note_dify_error(self, target: DifyTarget, user: str, exc: DifyAPIError) -> None:
        """Forget what a Dify refusal shows to be stale: the input form (the app was edited
        since it was cached) or an upload id (rec. 21c: "Invalid upload file")."""
        if exc.code not in ("invalid_param", "bad_request"):
            return
        if "input form" in exc.message:
            self.parameters.invalidate(target)
        if "upload file" in exc.message.lower():
            self.uploader.forget(target, user)
