"""What one response did, for the access log and the metrics: the first token, usage and
the error code. The edge (bridge.http.access) creates a `ResponseWatch` per request; the
relay (bridge.engine.delivery) reports its output items to it batch by batch, so relayed
frames need not be parsed again on their way out.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

import msgspec
from litestar.types import Message

from bridge.translate.stream import ContentDelta, ContentReplaced, Failed, Finished, ReasoningDelta

# Only the JSON of a non-streaming completion is kept for its usage; anything bigger is not
# a completion worth parsing.
_MAX_JSON_BODY = 4 * 1024 * 1024


class _Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class _WireUsage(msgspec.Struct):
    """Usage as either API writes it: chat/completions (`prompt_tokens`…) or Responses
    (`input_tokens`…)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def normal(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens or self.input_tokens,
            completion_tokens=self.completion_tokens or self.output_tokens,
            total_tokens=self.total_tokens,
        )


class _Error(msgspec.Struct):
    code: str | None = None


class _Payload(msgspec.Struct):
    """The parts of a `chat.completion(.chunk)` or error body the access log cares about."""

    choices: list[_Choice] = []
    usage: _WireUsage | None = None
    error: _Error | None = None


_payload = msgspec.json.Decoder(_Payload)
_TEXT_ITEMS = (ContentDelta, ReasoningDelta, ContentReplaced)
_current_watch: ContextVar[ResponseWatch | None] = ContextVar("bridge_response_watch", default=None)


def current_watch() -> ResponseWatch:
    """The watch of the request being served (a detached one outside the middleware)."""
    return _current_watch.get() or ResponseWatch(chat=False)


def watching(watch: ResponseWatch) -> None:
    """Make `watch` the watch of the request being served (the edge calls this)."""
    _current_watch.set(watch)


class ResponseWatch:
    """What one response did: from the ASGI messages sent to the client, or, for a relayed
    Dify run, from the output items the relay reports batch by batch (`note_items`), so the
    frames need not be parsed again on their way out."""

    def __init__(self, chat: bool) -> None:
        self.chat = chat
        self.started = time.perf_counter()
        self.status = 0
        self.stream = False
        self.json = False
        self.first_token: float | None = None
        self.ended: float | None = None
        self.usage: Usage | None = None
        self.error_code: str | None = None
        self.done = False
        self.reported = False  # the relay reports the items: frames are not parsed
        self._pending = b""
        self._json = bytearray()

    def note_items(self, items: list[Any]) -> None:
        for item in items:
            kind = type(item)
            if kind is Finished:
                self.done = True
                if item.usage is not None:
                    self.usage = Usage(
                        prompt_tokens=item.usage.prompt_tokens,
                        completion_tokens=item.usage.completion_tokens,
                        total_tokens=item.usage.total_tokens,
                    )
            elif kind is Failed:
                self.done = True
                self.error_code = item.error.code or "unknown"
            elif self.first_token is None and kind in _TEXT_ITEMS and item.text:
                self.first_token = time.perf_counter()

    def response_start(self, message: Message) -> None:
        self.status = message["status"]
        content_type = b""
        for name, value in message.get("headers", []):
            if name.lower() == b"content-type":
                content_type = value.lower()
        self.stream = content_type.startswith(b"text/event-stream")
        self.json = content_type.startswith(b"application/json")

    def response_body(self, body: bytes, more_body: bool) -> None:
        if self.reported:
            pass
        elif self.chat and self.stream:
            self._read_frames(body)
        elif self.chat and self.json and len(self._json) + len(body) <= _MAX_JSON_BODY:
            self._json += body
            # Whitespace keepalive before a non-streaming body is not the response yet.
            if self.first_token is None and body.strip():
                self.first_token = time.perf_counter()
        if not more_body:
            self.ended = time.perf_counter()
            if self._json:
                self._read_payload(bytes(self._json))

    def _read_frames(self, body: bytes) -> None:
        self._pending += body
        while b"\n\n" in self._pending:
            frame, self._pending = self._pending.split(b"\n\n", 1)
            for line in frame.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue  # keepalive comments and blank lines
                data = line[5:].strip()
                if data == b"[DONE]":
                    self.done = True
                elif self.first_token is None or b'"usage"' in data or b'"error"' in data:
                    self._read_payload(data)

    def _read_payload(self, data: bytes) -> None:
        try:
            payload = _payload.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if payload.usage is not None:
            self.usage = payload.usage.normal()
        if payload.error is not None:
            self.error_code = payload.error.code or "unknown"
        if self.first_token is None and any(
            choice.delta and (choice.delta.content or choice.delta.reasoning_content)
            for choice in payload.choices
        ):
            self.first_token = time.perf_counter()

    def ms(self, moment: float | None) -> float | None:
        return None if moment is None else round((moment - self.started) * 1000, 1)
