"""Output items → OpenAI `chat.completion.chunk` SSE frames or one `chat.completion`."""

from __future__ import annotations

import secrets
import time
from typing import Literal

import msgspec

from bridge.errors import BridgeError
from bridge.openai.types import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    ResponseMessage,
    Usage,
)
from bridge.translate.stream import (
    ContentDelta,
    ContentReplaced,
    Failed,
    Finished,
    OutputItem,
    ReasoningDelta,
)

ReasoningFormat = Literal["reasoning_content", "think"]

_encoder = msgspec.json.Encoder()
DONE = b"data: [DONE]\n\n"
THINK_OPEN = "<think>\n"
# Reasoning items are whole lines ending in a newline, so the block closes on its own line.
THINK_CLOSE = "</think>\n\n"


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def sse(payload: object) -> bytes:
    return b"data: " + _encoder.encode(payload) + b"\n\n"


def sse_comment(text: str) -> bytes:
    # Comments are ignored by every SSE client; Dify's bare `event: ping` would break the
    # openai SDKs (openai-chat-api.md §6.3).
    return b": " + text.encode() + b"\n\n"


def error_frame(error: BridgeError) -> bytes:
    """The mid-stream error chunk: the openai SDK raises APIError on a truthy `error` key."""
    return sse(error.body())


class ChunkEncoder:
    """Frames one streamed completion; every chunk shares one id, created and model."""

    def __init__(
        self,
        model: str,
        *,
        include_usage: bool = False,
        reasoning_format: ReasoningFormat = "reasoning_content",
    ) -> None:
        self.id = completion_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.reasoning_format = reasoning_format
        self._in_think = False

    def _chunk(self, delta: Delta, finish_reason: str | None = None) -> bytes:
        return sse(
            ChatCompletionChunk(
                id=self.id,
                created=self.created,
                model=self.model,
                choices=[ChunkChoice(index=0, delta=delta, finish_reason=finish_reason)],
            )
        )

    def start(self) -> bytes:
        return self._chunk(Delta(role="assistant", content=""))

    def encode(self, item: OutputItem) -> list[bytes]:
        match item:
            case ReasoningDelta(text=text):
                if self.reasoning_format == "reasoning_content":
                    return [self._chunk(Delta(reasoning_content=text))]
                prefix = "" if self._in_think else THINK_OPEN
                self._in_think = True
                return [self._chunk(Delta(content=prefix + text))]
            case ContentDelta(text=text):
                return [self._chunk(Delta(content=self._close_think() + text))]
            case ContentReplaced(text=text):
                # A delta cannot retract what was sent: the moderated replacement follows it,
                # set apart (README, "Moderation").
                return [self._chunk(Delta(content=self._close_think() + "\n\n" + text))]
            case Finished(finish_reason=reason, usage=usage):
                frames = []
                if self._in_think:
                    frames.append(self._chunk(Delta(content=self._close_think())))
                # finish_reason on its own empty delta: LobeChat drops it when it shares a chunk
                # with content (clients.md).
                frames.append(self._chunk(Delta(), reason))
                if self.include_usage:
                    frames.append(
                        sse(
                            ChatCompletionChunk(
                                id=self.id,
                                created=self.created,
                                model=self.model,
                                choices=[],
                                usage=usage
                                or Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0),
                            )
                        )
                    )
                frames.append(DONE)
                return frames
            case Failed(error=error):
                return [error_frame(error), DONE]
        return []

    def _close_think(self) -> str:
        if not self._in_think:
            return ""
        self._in_think = False
        return THINK_CLOSE


class CompletionAggregator:
    """Collects output items into one `chat.completion` (non-streaming requests)."""

    def __init__(self, model: str, *, reasoning_format: ReasoningFormat = "reasoning_content"):
        self.model = model
        self.reasoning_format = reasoning_format
        self.content = ""
        self.reasoning = ""
        self.finished: Finished | None = None

    def add(self, item: OutputItem) -> None:
        match item:
            case ContentDelta(text=text):
                self.content += text
            case ReasoningDelta(text=text):
                self.reasoning += text
            case ContentReplaced(text=text):
                self.content = text
            case Finished():
                self.finished = item
            case Failed(error=error):
                raise error

    def result(self) -> ChatCompletion:
        if self.finished is None:
            raise BridgeError(
                502, "Dify ended the run without an answer.", code="dify_no_answer", retryable=False
            )
        content, reasoning = self.content, self.reasoning or None
        if reasoning and self.reasoning_format == "think":
            # All of it at the start of content, where Open WebUI and Cherry Studio look for it.
            content, reasoning = THINK_OPEN + reasoning + THINK_CLOSE + content, None
        return ChatCompletion(
            id=completion_id(),
            created=int(time.time()),
            model=self.model,
            choices=[
                Choice(
                    index=0,
                    message=ResponseMessage(
                        role="assistant", content=content, reasoning_content=reasoning
                    ),
                    finish_reason=self.finished.finish_reason,
                )
            ],
            usage=self.finished.usage,
        )
