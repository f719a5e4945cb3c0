"""OpenAI request fields the bridge accepts and ignores: the Dify app decides these."""

from __future__ import annotations

from bridge.openai.types import ChatCompletionRequest

IGNORED_FIELDS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "response_format",
    "reasoning_effort",
    "verbosity",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "service_tier",
    "store",
    "safety_identifier",
    "prompt_cache_key",
)


def ignored_fields(request: ChatCompletionRequest) -> list[str]:
    """The ignored fields this request actually set, for one debug log line."""
    return [name for name in IGNORED_FIELDS if getattr(request, name, None) is not None]
