"""OpenAI Responses API (`POST /v1/responses`) and legacy Completions (`POST /v1/completions`)
wire shapes, as msgspec Structs.

The Response object and its stream events mirror what openai-python's types
(`openai.types.responses`) and its `responses.stream()` helper parse; text output only.
Unknown request fields are ignored, as for chat completions.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Struct, field

from bridge.openai.types import Usage

# ---------------------------------------------------------------- Responses: request


class ResponseCreateRequest(Struct, kw_only=True):
    model: str
    # A string (one user message) or a list of input items; items stay loose dicts here and
    # are read one by one (`bridge.translate.responses`), so an item type the bridge does not
    # know is skipped instead of failing the whole request.
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    stream: bool = False
    previous_response_id: str | None = None
    store: bool | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    # Bridge extension (openai SDKs: `extra_body`): Dify app input variables.
    inputs: dict[str, Any] | None = None
    # Accepted and ignored: the Dify app owns sampling, tools and output format. Typed `Any`
    # so that no client's unusual value fails the request; logged at debug.
    temperature: Any = None
    top_p: Any = None
    max_output_tokens: Any = None
    tools: Any = None
    tool_choice: Any = None
    parallel_tool_calls: Any = None
    text: Any = None
    reasoning: Any = None
    truncation: Any = None
    include: Any = None
    background: Any = None
    conversation: Any = None
    prompt: Any = None
    service_tier: Any = None
    safety_identifier: Any = None
    prompt_cache_key: Any = None
    stream_options: Any = None
    top_logprobs: Any = None
    max_tool_calls: Any = None


RESPONSE_IGNORED_FIELDS = (
    "temperature",
    "top_p",
    "max_output_tokens",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "reasoning",
    "truncation",
    "include",
    "background",
    "conversation",
    "prompt",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "stream_options",
    "top_logprobs",
    "max_tool_calls",
)

# ---------------------------------------------------------------- Responses: objects


class OutputText(Struct, tag_field="type", tag="output_text", kw_only=True):
    text: str
    annotations: list[Any] = field(default_factory=list)
    logprobs: list[Any] = field(default_factory=list)


class OutputMessage(Struct, tag_field="type", tag="message", kw_only=True):
    id: str
    status: Literal["in_progress", "completed", "incomplete"]
    content: list[OutputText]
    role: str = "assistant"


class SummaryText(Struct, tag_field="type", tag="summary_text", kw_only=True):
    text: str


class ReasoningItem(Struct, tag_field="type", tag="reasoning", kw_only=True):
    id: str
    summary: list[SummaryText]
    status: Literal["in_progress", "completed", "incomplete"] | None = None


OutputItem = OutputMessage | ReasoningItem


class InputTokensDetails(Struct, kw_only=True):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(Struct, kw_only=True):
    reasoning_tokens: int = 0


class ResponseUsage(Struct, kw_only=True):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: InputTokensDetails = field(default_factory=InputTokensDetails)
    output_tokens_details: OutputTokensDetails = field(default_factory=OutputTokensDetails)

    @classmethod
    def from_chat(cls, usage: Usage | None) -> ResponseUsage:
        if usage is None:
            return cls(input_tokens=0, output_tokens=0, total_tokens=0)
        return cls(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        )


class ResponseError(Struct, kw_only=True):
    # OpenAI's codes are an enum (`server_error`, `rate_limit_exceeded`, `invalid_prompt`…);
    # the bridge's own code (e.g. `dify_workflow_failed`) is in the `error` event.
    code: str
    message: str


class ReasoningConfig(Struct, kw_only=True):
    effort: str | None = None
    summary: str | None = None


class TextFormat(Struct, kw_only=True):
    type: str = "text"


class TextConfig(Struct, kw_only=True):
    format: TextFormat = field(default_factory=TextFormat)


ResponseStatus = Literal["in_progress", "completed", "failed", "incomplete"]


class ResponseObject(Struct, kw_only=True):
    """The `Response` object (`openai.types.responses.Response`)."""

    id: str
    created_at: int
    model: str
    status: ResponseStatus
    output: list[OutputItem]
    object: str = "response"
    error: ResponseError | None = None
    incomplete_details: None = None
    instructions: str | None = None
    max_output_tokens: None = None
    parallel_tool_calls: bool = False
    previous_response_id: str | None = None
    reasoning: ReasoningConfig = field(default_factory=ReasoningConfig)
    store: bool = True
    temperature: float | None = None
    text: TextConfig = field(default_factory=TextConfig)
    tool_choice: str = "none"
    tools: list[Any] = field(default_factory=list)
    top_p: float | None = None
    truncation: str = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    completed_at: int | None = None


class DeletedResponse(Struct, kw_only=True):
    id: str
    object: str = "response.deleted"
    deleted: bool = True


# ---------------------------------------------------------------- Responses: stream events
# Every event carries `type` (the tag) and `sequence_number`; the SSE `event:` line repeats
# the type (the SDK reads `data.type`).


class ResponseCreated(Struct, tag_field="type", tag="response.created", kw_only=True):
    sequence_number: int
    response: ResponseObject


class ResponseInProgress(Struct, tag_field="type", tag="response.in_progress", kw_only=True):
    sequence_number: int
    response: ResponseObject


class ResponseCompleted(Struct, tag_field="type", tag="response.completed", kw_only=True):
    sequence_number: int
    response: ResponseObject


class ResponseFailed(Struct, tag_field="type", tag="response.failed", kw_only=True):
    sequence_number: int
    response: ResponseObject


class OutputItemAdded(Struct, tag_field="type", tag="response.output_item.added", kw_only=True):
    sequence_number: int
    output_index: int
    item: OutputItem


class OutputItemDone(Struct, tag_field="type", tag="response.output_item.done", kw_only=True):
    sequence_number: int
    output_index: int
    item: OutputItem


class ContentPartAdded(Struct, tag_field="type", tag="response.content_part.added", kw_only=True):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class ContentPartDone(Struct, tag_field="type", tag="response.content_part.done", kw_only=True):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class OutputTextDelta(Struct, tag_field="type", tag="response.output_text.delta", kw_only=True):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any] = field(default_factory=list)


class OutputTextDone(Struct, tag_field="type", tag="response.output_text.done", kw_only=True):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any] = field(default_factory=list)


class SummaryPartAdded(
    Struct, tag_field="type", tag="response.reasoning_summary_part.added", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class SummaryPartDone(
    Struct, tag_field="type", tag="response.reasoning_summary_part.done", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class SummaryTextDelta(
    Struct, tag_field="type", tag="response.reasoning_summary_text.delta", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    delta: str


class SummaryTextDone(
    Struct, tag_field="type", tag="response.reasoning_summary_text.done", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    text: str


class ErrorDetail(Struct, kw_only=True):
    message: str
    type: str
    code: str | None
    param: str | None = None


class ErrorEvent(Struct, tag_field="type", tag="error", kw_only=True):
    """The terminal `error` event. `code`/`message`/`param` are the SDK type's fields; the
    nested `error` object is what makes the openai SDKs raise `APIError` while iterating
    (a truthy top-level `error` key, openai-chat-api.md §6.1)."""

    sequence_number: int
    code: str | None
    message: str
    param: str | None
    error: ErrorDetail


ResponseEvent = (
    ResponseCreated
    | ResponseInProgress
    | ResponseCompleted
    | ResponseFailed
    | OutputItemAdded
    | OutputItemDone
    | ContentPartAdded
    | ContentPartDone
    | OutputTextDelta
    | OutputTextDone
    | SummaryPartAdded
    | SummaryPartDone
    | SummaryTextDelta
    | SummaryTextDone
    | ErrorEvent
)

# ---------------------------------------------------------------- legacy completions


class CompletionRequest(Struct, kw_only=True):
    model: str
    # A string, a list of strings, or token ids (list[int] / list[list[int]]): typed loosely
    # so that the unsupported shapes get a clear 400 instead of a type error.
    prompt: Any = None
    stream: bool = False
    stream_options: Any = None
    n: int | None = None
    best_of: int | None = None
    echo: bool | None = None
    logprobs: int | None = None
    suffix: str | None = None
    user: str | None = None
    inputs: dict[str, Any] | None = None
    # Accepted and ignored, as for chat.
    max_tokens: Any = None
    temperature: Any = None
    top_p: Any = None
    stop: Any = None
    presence_penalty: Any = None
    frequency_penalty: Any = None
    logit_bias: Any = None
    seed: Any = None


class TextChoice(Struct, kw_only=True):
    text: str
    index: int = 0
    logprobs: None = None
    finish_reason: str | None = None


class TextCompletion(Struct, kw_only=True):
    """Both the non-stream body and each stream chunk (`object` stays `text_completion`)."""

    id: str
    created: int
    model: str
    choices: list[TextChoice]
    object: str = "text_completion"
    usage: Usage | None = None
