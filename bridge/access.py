"""The edge of every request: request id, one access log line, chat metrics, and a clean end
for responses that are still running when a shutdown's grace period runs out.

The middleware watches the bytes the client receives rather than hooking into the chat
route: TTFT is measured on the first content or reasoning chunk actually sent, usage and
mid-stream errors are read from the frames themselves.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextvars import ContextVar
from typing import Any

import msgspec
import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from bridge.errors import BridgeError
from bridge.metrics import (
    ACTIVE_STREAMS,
    CHAT_DURATION,
    CHAT_REQUESTS,
    CHAT_TOKENS,
    CHAT_TTFT,
    UPSTREAM_ERRORS,
    code_label,
    model_label,
)
from bridge.translate.stream import ContentDelta, ContentReplaced, Failed, Finished, ReasoningDelta

log = structlog.get_logger("bridge")

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
_DONE = b"data: [DONE]\n\n"
# Only the JSON of a non-streaming completion is kept for its usage; anything bigger is not
# a completion worth parsing.
_MAX_JSON_BODY = 4 * 1024 * 1024


class _Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class _Error(msgspec.Struct):
    code: str | None = None


class _Payload(msgspec.Struct):
    """The parts of a `chat.completion(.chunk)` or error body the access log cares about."""

    choices: list[_Choice] = []
    usage: _Usage | None = None
    error: _Error | None = None


_payload = msgspec.json.Decoder(_Payload)
_TEXT_ITEMS = (ContentDelta, ReasoningDelta, ContentReplaced)
_current_watch: ContextVar[ResponseWatch | None] = ContextVar("bridge_response_watch", default=None)


def current_watch() -> ResponseWatch:
    """The watch of the request being served (a detached one outside the middleware)."""
    return _current_watch.get() or ResponseWatch(chat=False)


def shutdown_error() -> BridgeError:
    return BridgeError(
        503,
        "The bridge is shutting down; the answer was cut short. Send the request again.",
        code="bridge_shutting_down",
        type="server_error",
    )


class InFlight:
    """Requests being served, so shutdown can wait for the last bytes to go out."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count <= 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


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
        self.usage: _Usage | None = None
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
                    self.usage = _Usage(
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
            self.usage = payload.usage
        if payload.error is not None:
            self.error_code = payload.error.code or "unknown"
        if self.first_token is None and any(
            choice.delta and (choice.delta.content or choice.delta.reasoning_content)
            for choice in payload.choices
        ):
            self.first_token = time.perf_counter()

    def ms(self, moment: float | None) -> float | None:
        return None if moment is None else round((moment - self.started) * 1000, 1)


def _request_id(scope: Scope) -> str:
    incoming = b""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            incoming = value
    text = incoming.decode("latin-1")
    if 0 < len(text) <= 128 and text.isprintable():
        return text
    return "req_" + uuid.uuid4().hex


class RequestContext:
    """ASGI middleware: request id in and out (`X-Request-Id`), one access log line per
    request (written when the last byte of the body, a whole stream for SSE, has been sent),
    the chat metrics, and the shutdown cut-off."""

    def __init__(self, app: ASGIApp, in_flight: InFlight | None = None) -> None:
        self.app = app
        self.in_flight = in_flight or InFlight()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        chat = scope["method"] == "POST" and scope["path"] in CHAT_PATHS
        watch = ResponseWatch(chat)
        _current_watch.set(watch)
        finished = False
        streaming = False

        def finish() -> None:
            # Called in the task that sent the last byte: for a stream that is Litestar's
            # streaming task, whose context holds what the chat route bound (usage).
            nonlocal finished, streaming
            if finished:
                return
            finished = True
            if streaming:
                ACTIVE_STREAMS.dec()
                streaming = False
            _record(scope, watch)

        async def observed_send(message: Message) -> None:
            nonlocal streaming
            if message["type"] == "http.response.start":
                watch.response_start(message)
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
                if chat and watch.stream:
                    ACTIVE_STREAMS.inc()
                    streaming = True
            elif message["type"] == "http.response.body":
                more_body = message.get("more_body", False)
                watch.response_body(message.get("body", b""), more_body)
                if not more_body:
                    await send(message)
                    finish()
                    return
            await send(message)

        self.in_flight.enter()
        try:
            await self.app(scope, receive, observed_send)
        except asyncio.CancelledError:
            # uvicorn cancels what is still running when the shutdown grace period is over:
            # end the response properly instead of cutting the connection mid-frame.
            if finished:
                raise
            await _cut_short(watch, send, request_id)
            # The response is complete now and nothing awaits this request task: ending it
            # normally spares the log uvicorn's "Exception in ASGI application" traceback.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            try:
                finish()
            finally:
                self.in_flight.leave()


async def _cut_short(watch: ResponseWatch, send: Send, request_id: str) -> None:
    error = shutdown_error()
    body = msgspec.json.encode(error.body())
    watch.error_code = error.code
    try:
        if not watch.status:
            watch.status = error.status
            await send(
                {
                    "type": "http.response.start",
                    "status": error.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"x-request-id", request_id.encode()),
                        (b"x-should-retry", b"true"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body, "more_body": False})
        elif watch.stream:
            frames = b"data: " + body + b"\n\n" + (b"" if watch.done else _DONE)
            await send({"type": "http.response.body", "body": frames, "more_body": False})
        else:
            # A non-streaming body still held back by whitespace keepalives: the error is
            # the JSON body (docs/streaming.md); otherwise just end what was sent.
            tail = body if watch.json and watch.first_token is None else b""
            await send({"type": "http.response.body", "body": tail, "more_body": False})
    except Exception:  # the client may be gone too; nothing more to do for it
        return
    watch.ended = time.perf_counter()


def _record(scope: Scope, watch: ResponseWatch) -> None:
    context = structlog.contextvars.get_contextvars()
    fields: dict[str, Any] = {
        "method": scope["method"],
        "path": scope["path"],
        "status": watch.status,
        "duration_ms": watch.ms(watch.ended or time.perf_counter()),
    }
    usage: _Usage | None = None
    if watch.chat:
        fields["stream"] = watch.stream
        fields["ttft_ms"] = watch.ms(watch.first_token)
        usage = watch.usage
        if usage is not None:
            fields.update(
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                total_tokens=usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
            )
        if watch.error_code:
            fields["error_code"] = watch.error_code
    if watch.ended is None:
        fields["incomplete"] = True
    log.info("request", **fields)
    if watch.chat:
        _observe_chat(scope, watch, context.get("model"), usage)


def _observe_chat(
    scope: Scope, watch: ResponseWatch, model: str | None, usage: _Usage | None
) -> None:
    app = scope.get("app")
    registry = getattr(getattr(app, "state", None), "registry", None) if app else None
    label = model_label(registry, model)
    stream = "true" if watch.stream else "false"
    CHAT_REQUESTS.labels(label, str(watch.status)).inc()
    CHAT_DURATION.labels(label, stream).observe(
        (watch.ended or time.perf_counter()) - watch.started
    )
    if watch.first_token is not None:
        CHAT_TTFT.labels(label, stream).observe(watch.first_token - watch.started)
    if usage is not None:
        CHAT_TOKENS.labels(label, "prompt").inc(usage.prompt_tokens)
        CHAT_TOKENS.labels(label, "completion").inc(usage.completion_tokens)
    # A stream that started and then failed: Dify's failure, reported inside the stream.
    # (Failures before the stream are counted where the Dify call failed, in metrics.py.)
    if watch.stream and watch.error_code and watch.error_code != "bridge_shutting_down":
        UPSTREAM_ERRORS.labels(code_label(watch.error_code)).inc()
