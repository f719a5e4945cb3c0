"""Delivering a Dify run to the client: the client's side of the stream engine.

One loop, `relay`, serves every response shape. It sleeps on the run's `ready` event, takes
everything the reader translated meanwhile, and hands it to a sink as one batch: SSE frames in
one ASGI send, or items added to an aggregator. Three things wake it: the reader (items, or
the end), a keepalive timer, and a `ClientWatch` that reads the ASGI receive channel the whole
time, so a client that leaves is noticed at once whether Dify is silent or flooding. The run
is then closed in the background: upstream released, Dify task stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
import structlog
from litestar import Request
from litestar.response import Stream
from litestar.types import Receive, Send

from bridge.engine.report import current_watch
from bridge.engine.run import DifyRun
from bridge.engine.service import ChatService
from bridge.errors import BridgeError
from bridge.translate.openai_out import sse_comment
from bridge.translate.stream import Failed, OutputItem, coalesced

log = structlog.get_logger("bridge.chat")

KEEPALIVE_BYTE = b" "
KEEPALIVE_COMMENT = sse_comment("keepalive")
_json = msgspec.json.Encoder()


class ClientWatch:
    """Reads the ASGI receive channel until `http.disconnect` (the body was read already, so
    nothing else can come), then marks the client gone and wakes the relay."""

    def __init__(self, receive: Receive, wake: Callable[[], None]) -> None:
        self.gone = False
        self._task = asyncio.create_task(self._watch(receive, wake))

    async def _watch(self, receive: Receive, wake: Callable[[], None]) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        wake()

    def close(self) -> None:
        self._task.cancel()


class Sink(Protocol):
    async def items(self, items: list[OutputItem]) -> None: ...

    async def keepalive(self) -> None: ...


async def relay(run: DifyRun, sink: Sink, *, keepalive: float | None, watch: ClientWatch) -> None:
    """Move the run's output to `sink` until the run is exhausted or the client is gone.
    Keepalives count from the last thing the client got: events can flow while it gets
    nothing (quiet nodes, an answer held for moderation)."""
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    ticker: asyncio.TimerHandle | None = None

    def tick() -> None:
        nonlocal ticker
        due = last_sent + keepalive  # type: ignore[operator]
        if loop.time() >= due:
            run.ready.set()
            due = loop.time() + keepalive  # type: ignore[operator]
        ticker = loop.call_at(due, tick)

    if keepalive:
        ticker = loop.call_later(keepalive, tick)
    try:
        while True:
            await run.ready.wait()
            run.ready.clear()
            if watch.gone:
                return
            items = await run.take()
            if items:
                await sink.items(coalesced(items))
                last_sent = loop.time()
            elif keepalive and loop.time() - last_sent >= keepalive:
                await sink.keepalive()
                last_sent = loop.time()
            if run.exhausted:
                return
    finally:
        if ticker is not None:
            ticker.cancel()


def _finish(run: DifyRun, watch: ClientWatch, service: ChatService) -> bool:
    """Stop watching (a finished response also reads as a disconnect) and close the run in
    the background: stopping Dify must outlive this request. Whether the client left."""
    watch.close()
    if watch.gone:
        log.info("client_disconnected")
    service.spawn(run.aclose(client_left=watch.gone))
    return watch.gone


def _log_failure(error: BridgeError) -> None:
    # After the status line went out this is the only trace of the failure on our side;
    # the request id comes from the bound context (bridge.http.access.RequestContext).
    log.warning("run_failed", status=error.status, code=error.code, error=error.message)


BeforeSend = Callable[[], Awaitable[None]]


class Encoder(Protocol):
    """Output items → SSE frames (ChunkEncoder, and the Responses / legacy encoders)."""

    def start(self) -> bytes: ...

    def encode(self, item: OutputItem) -> list[bytes]: ...


class Aggregator(Protocol):
    def add(self, item: OutputItem) -> None: ...

    def result(self) -> Any: ...


class _Frames:
    """SSE: each batch is encoded and written with one send. `before_send` runs between the
    two (e.g. to store a finished response before the client can refer to it)."""

    def __init__(self, send: Send, encoder: Encoder, before_send: BeforeSend | None) -> None:
        self.send = send
        self.encoder = encoder
        self.before_send = before_send
        self.watch = current_watch()
        self.watch.reported = True  # the frames need no parsing to be logged

    async def items(self, items: list[OutputItem]) -> None:
        frames: list[bytes] = []
        for item in items:
            if isinstance(item, Failed):
                _log_failure(item.error)
            frames.extend(self.encoder.encode(item))
        self.watch.note_items(items)
        if self.before_send is not None:
            await self.before_send()
        await self.send({"type": "http.response.body", "body": b"".join(frames), "more_body": True})

    async def keepalive(self) -> None:
        await self.send(
            {"type": "http.response.body", "body": KEEPALIVE_COMMENT, "more_body": True}
        )


class _Aggregate:
    """Non-streaming: items go into the completion; keepalives are spaces before the JSON
    when the response has started (`padded`), nothing otherwise."""

    def __init__(self, aggregator: Aggregator, send: Send | None = None) -> None:
        self.aggregator = aggregator
        self.send = send

    async def items(self, items: list[OutputItem]) -> None:
        for item in items:
            self.aggregator.add(item)

    async def keepalive(self) -> None:
        if self.send is not None:
            await self.send(
                {"type": "http.response.body", "body": KEEPALIVE_BYTE, "more_body": True}
            )


class RelayedResponse(Stream):
    """A response whose head goes out first and whose body is written by `body(send,
    receive)`: the relay needs the raw ASGI channels to watch the client."""

    def __init__(
        self,
        body: Callable[[Send, Receive], Awaitable[None]],
        *,
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__((), media_type=media_type, headers=headers)
        self._body = body

    def to_asgi_response(self, app: Any, request: Request, **kwargs: Any) -> Any:  # type: ignore[override]
        head = super().to_asgi_response(app, request, **kwargs)
        body = self._body

        async def asgi(scope: Any, receive: Receive, send: Send) -> None:
            await head.start_response(send)
            await body(send, receive)

        return asgi


def event_stream(
    run: DifyRun,
    encoder: Encoder,
    service: ChatService,
    headers: dict[str, str],
    *,
    before_send: BeforeSend | None = None,
) -> RelayedResponse:
    """The run as SSE frames from `encoder`, with keepalive comments."""

    async def body(send: Send, receive: Receive) -> None:
        watch = ClientWatch(receive, run.ready.set)
        frames = _Frames(send, encoder, before_send)
        try:
            await send({"type": "http.response.body", "body": encoder.start(), "more_body": True})
            await relay(run, frames, keepalive=service.settings.keepalive_interval, watch=watch)
        finally:
            left = _finish(run, watch, service)
        if not left:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return RelayedResponse(body, media_type="text/event-stream", headers=headers)


def padded_completion(
    run: DifyRun,
    aggregator: Aggregator,
    service: ChatService,
    headers: dict[str, str],
    *,
    before_send: BeforeSend | None = None,
) -> RelayedResponse:
    """A non-streaming answer behind whitespace keepalives. JSON allows leading whitespace and
    the openai SDKs parse it; tunnels see bytes flowing (Cloudflare cuts a response whose
    first byte takes ~100 s, clients.md). The status is already 200, so a failure becomes an
    OpenAI error body with status 200 (docs/streaming.md)."""

    async def body(send: Send, receive: Receive) -> None:
        watch = ClientWatch(receive, run.ready.set)
        sink = _Aggregate(aggregator, send)
        result: Any = None
        try:
            await send({"type": "http.response.body", "body": KEEPALIVE_BYTE, "more_body": True})
            await relay(run, sink, keepalive=service.settings.keepalive_interval, watch=watch)
            result = aggregator.result()
            if before_send is not None:
                await before_send()
        except BridgeError as exc:
            _log_failure(exc)
            result = exc.body()
        finally:
            left = _finish(run, watch, service)
        if not left:
            await send(
                {"type": "http.response.body", "body": _json.encode(result), "more_body": False}
            )

    return RelayedResponse(body, media_type="application/json", headers=headers)


async def complete(
    request: Request, run: DifyRun, aggregator: Aggregator, service: ChatService
) -> Any | None:
    """The aggregated completion, or None when the client left first (Dify is stopped)."""
    watch = ClientWatch(request.receive, run.ready.set)
    try:
        await relay(run, _Aggregate(aggregator), keepalive=None, watch=watch)
    finally:
        left = _finish(run, watch, service)
    return None if left else aggregator.result()
