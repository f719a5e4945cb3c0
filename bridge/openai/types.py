"""OpenAI Chat Completions request and response shapes, as msgspec Structs.

Unknown request fields are ignored (clients send many: temperature, tools, seed…); the Dify
app decides those things. Response structs mirror what the official SDKs parse.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import Struct, field

# ---------------------------------------------------------------- request


class TextPart(Struct, tag_field="type", tag="text", kw_only=True):
    text: str


class ImageURL(Struct, kw_only=True):
    url: str
    detail: str | None = None


class ImagePart(Struct, tag_field="type", tag="image_url", kw_only=True):
    # Some clients send the URL as a bare string instead of `{"url": …}`.
    image_url: ImageURL | str

    @property
    def url(self) -> str:
        return self.image_url if isinstance(self.image_url, str) else self.image_url.url


class InputAudio(Struct, kw_only=True):
    data: str
    format: str = "wav"


class AudioPart(Struct, tag_field="type", tag="input_audio", kw_only=True):
    input_audio: InputAudio


class FileData(Struct, kw_only=True):
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class FilePart(Struct, tag_field="type", tag="file", kw_only=True):
    file: FileData


class RefusalPart(Struct, tag_field="type", tag="refusal", kw_only=True):
    refusal: str


ContentPart = TextPart | ImagePart | AudioPart | FilePart | RefusalPart

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ChatMessage(Struct, kw_only=True):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    # Clients echo reasoning back on assistant turns (DeepSeek convention); it is dropped.
    reasoning_content: str | None = None

    def text(self) -> str:
        """The message's text: a string as is, text parts joined by newlines."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(
            part.text if isinstance(part, TextPart) else part.refusal
            for part in self.content
            if isinstance(part, TextPart | RefusalPart)
        )

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


class StreamOptions(Struct, kw_only=True):
    include_usage: bool = False


class ChatCompletionRequest(Struct, kw_only=True):
    model: str
    messages: list[ChatMessage]
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    # Bridge extensions (the openai SDKs send them with `extra_body`).
    inputs: dict[str, Any] | None = None
    conversation_id: str | None = None
    # Accepted and ignored: the Dify app owns sampling, tools and output format. Typed `Any`
    # so a client's unusual value never fails the request; `bridge.inputs.ignored` logs them.
    temperature: Any = None
    top_p: Any = None
    max_tokens: Any = None
    max_completion_tokens: Any = None
    stop: Any = None
    presence_penalty: Any = None
    frequency_penalty: Any = None
    logit_bias: Any = None
    logprobs: Any = None
    top_logprobs: Any = None
    seed: Any = None
    tools: Any = None
    tool_choice: Any = None
    parallel_tool_calls: Any = None
    functions: Any = None
    function_call: Any = None
    response_format: Any = None
    reasoning_effort: Any = None
    verbosity: Any = None
    modalities: Any = None
    audio: Any = None
    prediction: Any = None
    web_search_options: Any = None
    service_tier: Any = None
    store: Any = None
    safety_identifier: Any = None
    prompt_cache_key: Any = None


# ---------------------------------------------------------------- responses


class PromptTokensDetails(Struct, kw_only=True):
    cached_tokens: int = 0


class CompletionTokensDetails(Struct, kw_only=True):
    reasoning_tokens: int = 0


class Usage(Struct, kw_only=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ResponseMessage(Struct, kw_only=True, omit_defaults=True):
    role: str
    content: str | None = None
    reasoning_content: str | None = None


class Choice(Struct, kw_only=True):
    index: int
    message: ResponseMessage
    finish_reason: str | None
    logprobs: None = None


class ChatCompletion(Struct, kw_only=True):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | None = None


class Delta(Struct, kw_only=True, omit_defaults=True):
    # omit_defaults: LobeChat checks `delta.content` before `reasoning_content`, so a
    # reasoning chunk must not carry a `content` key at all (clients.md).
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None


class ChunkChoice(Struct, kw_only=True):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(Struct, kw_only=True):
    id: str
    object: str = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = field(default=None)


class Model(Struct, kw_only=True):
    id: str
    created: int
    owned_by: str
    object: str = "model"


class ModelList(Struct, kw_only=True):
    data: list[Model]
    object: str = "list"
