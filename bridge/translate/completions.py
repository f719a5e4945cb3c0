"""Legacy `POST /v1/completions`: request checks and `text_completion` framing (pure).

The prompt becomes the one user message of a chat request, so every app mode serves it as it
serves chat. Reasoning has no place in a text completion and is left out, unless the model's
reasoning format is `think` (then it leads the text in a `<think>` block, as in chat).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from bridge.errors import BridgeError, bad_request
from bridge.openai.responses import CompletionRequest, TextChoice, TextCompletion
from bridge.openai.types import ChatCompletionRequest, ChatMessage, Usage
from bridge.translate.openai_out import DONE, THINK_CLOSE, THINK_OPEN, error_frame, sse
from bridge.translate.stream import (
    ContentDelta,
    ContentReplaced,
    Failed,
    Finished,
    OutputItem,
    ReasoningDelta,
)


def completion_id() -> str:
    return "cmpl-" + secrets.token_hex(12)


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt) and prompt:
        raise bad_request(
            "Only one prompt per request is supported: send `prompt` as a string or a list "
            "of one string.",
            param="prompt",
        )
    if prompt is None:
        raise bad_request("`prompt` is required.", param="prompt")
    raise bad_request(
        "Token-id prompts are not supported: a Dify app takes text. Send `prompt` as a string.",
        param="prompt",
    )


def chat_request_for_completion(request: CompletionRequest) -> ChatCompletionRequest:
    """Check what a Dify app cannot do, and map the prompt onto a one-message chat request."""
    if request.n not in (None, 1):
        raise bad_request("Invalid value for 'n': only n=1 is supported.", param="n")
    if request.best_of not in (None, 1):
        raise bad_request(
            "Invalid value for 'best_of': only best_of=1 is supported.", param="best_of"
        )
    if request.echo:
        raise bad_request(
            "`echo` is not supported: a Dify app does not return the prompt.", param="echo"
        )
    if request.logprobs is not None:
        raise bad_request(
            "`logprobs` is not supported: Dify reports no log probabilities.", param="logprobs"
        )
    if request.suffix:
        raise bad_request("`suffix` (insertion) is not supported by Dify apps.", param="suffix")
    text = _prompt_text(request.prompt)
    if not text.strip():
        raise bad_request("`prompt` must not be empty.", param="prompt")
    return ChatCompletionRequest(
        model=request.model,
        messages=[ChatMessage(role="user", content=text)],
        stream=request.stream,
        user=request.user,
        inputs=request.inputs,
    )


class _Text:
    """The text a completion shows for each output item (shared by both framings)."""

    def __init__(self, think: bool) -> None:
        self.think = think
        self._in_think = False

    def piece(self, item: OutputItem, so_far: str) -> str:
        match item:
            case ReasoningDelta(text=text):
                if not self.think:
                    return ""
                prefix = "" if self._in_think else THINK_OPEN
                self._in_think = True
                return prefix + text
            case ContentDelta(text=text):
                return self.close() + text
            case ContentReplaced(text=text):
                return self.close() + ("\n\n" if so_far else "") + text
        return ""

    def close(self) -> str:
        if not self._in_think:
            return ""
        self._in_think = False
        return THINK_CLOSE


class TextCompletionEncoder:
    """`text_completion` chunks: text deltas, a final chunk with `finish_reason`, the usage
    chunk when asked for, then `[DONE]`."""

    def __init__(self, model: str, *, include_usage: bool = False, think: bool = False) -> None:
        self.id = completion_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self._text = _Text(think)
        self._sent = ""

    def _chunk(self, text: str, finish_reason: str | None = None) -> bytes:
        return sse(
            TextCompletion(
                id=self.id,
                created=self.created,
                model=self.model,
                choices=[TextChoice(text=text, finish_reason=finish_reason)],
            )
        )

    def start(self) -> bytes:
        return self._chunk("")

    def encode(self, item: OutputItem) -> list[bytes]:
        if isinstance(item, Finished):
            frames = []
            tail = self._text.close()
            if tail:
                frames.append(self._chunk(tail))
            frames.append(self._chunk("", item.finish_reason))
            if self.include_usage:
                usage = item.usage or Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
                frames.append(
                    sse(
                        TextCompletion(
                            id=self.id,
                            created=self.created,
                            model=self.model,
                            choices=[],
                            usage=usage,
                        )
                    )
                )
            return [*frames, DONE]
        if isinstance(item, Failed):
            return [error_frame(item.error), DONE]
        text = self._text.piece(item, self._sent)
        self._sent += text
        return [self._chunk(text)] if text else []


class TextCompletionAggregator:
    def __init__(self, model: str, *, think: bool = False) -> None:
        self.model = model
        self._text = _Text(think)
        self.text = ""
        self.finished: Finished | None = None

    def add(self, item: OutputItem) -> None:
        if isinstance(item, Failed):
            raise item.error
        if isinstance(item, Finished):
            self.text += self._text.close()
            self.finished = item
        elif isinstance(item, ContentReplaced):
            # Non-stream: the moderated replacement is the answer.
            self._text.close()
            self.text = item.text
        else:
            self.text += self._text.piece(item, self.text)

    def result(self) -> TextCompletion:
        if self.finished is None:
            raise BridgeError(
                502, "Dify ended the run without an answer.", code="dify_no_answer", retryable=False
            )
        return TextCompletion(
            id=completion_id(),
            created=int(time.time()),
            model=self.model,
            choices=[TextChoice(text=self.text, finish_reason=self.finished.finish_reason)],
            usage=self.finished.usage
            or Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0),
        )
