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
from typing import Any

import msgspec
import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from bridge.engine.report import ResponseWatch, Usage, watching
from bridge.errors import BridgeError
from bridge.http.metrics import (
    ACTIVE_STREAMS,
    CHAT_DURATION,
    CHAT_REQUESTS,
    CHAT_TOKENS,
    CHAT_TTFT,
    UPSTREAM_ERRORS,
    code_label,
    model_label,
)
from bridge.http.refusals import answer_unseen, note_client_gone

log = structlog.get_logger("bridge")

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
# Requests answered by a Dify run: their access lines carry stream, ttft and usage. (The
# bridge_chat_* metrics stay chat completions only, as their names say.)
ANSWER_PATHS = CHAT_PATHS | frozenset(
    {"/v1/responses", "/responses", "/v1/completions", "/completions"}
)
_DONE = b"data: [DONE]\n\n"


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
        answer = scope["method"] == "POST" and scope["path"] in ANSWER_PATHS
        chat = answer and scope["path"] in CHAT_PATHS
        watch = ResponseWatch(answer)
        watching(watch)
        finished = False
        streaming = False
        unseen = False  # the client never sees what the app sends (see observed_send)

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
            _record(scope, watch, chat)

        async def observed_receive() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not watch.status:
                note_client_gone(scope)  # gone before any answer (bridge.http.refusals)
            return message

        async def observed_send(message: Message) -> None:
            nonlocal streaming, unseen
            if message["type"] == "http.response.start":
                if (got := answer_unseen(scope, message["status"])) is not None:
                    # Nobody receives the app's answer (the edge refused the request, or the
                    # client left): count and log what the client did get. The server drops
                    # the message; the Prometheus middleware outside reads the status here.
                    message = {**message, "status": got[0]}
                    watch.error_code = got[1]
                    unseen = True
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
                watch.response_body(b"" if unseen else message.get("body", b""), more_body)
                if not more_body:
                    await send(message)
                    finish()
                    return
            await send(message)

        self.in_flight.enter()
        try:
            await self.app(scope, observed_receive, observed_send)
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


def _record(scope: Scope, watch: ResponseWatch, chat: bool) -> None:
    context = structlog.contextvars.get_contextvars()
    fields: dict[str, Any] = {
        "method": scope["method"],
        "path": scope["path"],
        "status": watch.status,
        "duration_ms": watch.ms(watch.ended or time.perf_counter()),
    }
    usage: Usage | None = None
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
    if chat:
        _observe_chat(scope, watch, context.get("model"), usage)


def _observe_chat(
    scope: Scope, watch: ResponseWatch, model: str | None, usage: Usage | None
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
