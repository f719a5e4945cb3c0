"""Delivering a Dify run to the client: SSE chunks, one JSON body, or a JSON body behind
whitespace keepalives — and stopping the run when the client goes away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import msgspec
import structlog
from litestar import Request

from bridge.errors import BridgeError
from bridge.openai.types import ChatCompletion
from bridge.serving import KEEPALIVE, ChatService, DifyRun
from bridge.translate.openai_out import ChunkEncoder, CompletionAggregator, sse_comment
from bridge.translate.stream import Failed

log = structlog.get_logger("bridge.chat")

KEEPALIVE_BYTE = b" "
_json = msgspec.json.Encoder()


async def complete(
    request: Request, run: DifyRun, aggregator: CompletionAggregator, service: ChatService
) -> ChatCompletion | None:
    """The aggregated completion, or None when the client left first (Dify is stopped)."""
    try:
        return await _unless_client_leaves(request, _aggregate(run, aggregator))
    finally:
        service.spawn(run.aclose())


async def _aggregate(run: DifyRun, aggregator: CompletionAggregator) -> ChatCompletion:
    async for item in run.items(keepalive=None):
        if item is not KEEPALIVE:
            aggregator.add(item)  # type: ignore[arg-type]
    return aggregator.result()


async def _unless_client_leaves(
    request: Request, work: Coroutine[Any, Any, ChatCompletion]
) -> ChatCompletion | None:
    """Run `work` unless the client disconnects first (then None). A plain handler is not
    cancelled when its client goes away, and the Dify run would go on to the end."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_client_gone(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        log.info("client_disconnected")
        return None
    finally:
        for pending in (task, gone):
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending


async def _client_gone(request: Request) -> None:
    # The body was read already, so the next ASGI message is the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _log_failure(error: BridgeError) -> None:
    # After the status line went out this is the only trace of the failure on our side;
    # the request id comes from the bound context (bridge.access.RequestContext).
    log.warning("run_failed", status=error.status, code=error.code, error=error.message)


async def sse_frames(
    run: DifyRun, encoder: ChunkEncoder, service: ChatService
) -> AsyncIterator[bytes]:
    try:
        yield encoder.start()
        async for item in run.items(keepalive=service.settings.keepalive_interval):
            if item is KEEPALIVE:
                yield sse_comment("keepalive")
                continue
            if isinstance(item, Failed):
                _log_failure(item.error)
            for frame in encoder.encode(item):  # type: ignore[arg-type]
                yield frame
    finally:
        # Runs on normal end and when the client went away (the generator is closed):
        # stopping Dify must survive the cancelled request task.
        service.spawn(run.aclose())


async def padded_completion(
    run: DifyRun, aggregator: CompletionAggregator, service: ChatService
) -> AsyncIterator[bytes]:
    """A non-streaming answer behind whitespace keepalives. JSON allows leading whitespace and
    the openai SDKs parse it; tunnels see bytes flowing (Cloudflare cuts a response whose
    first byte takes ~100 s, clients.md). The status is already 200, so a failure becomes an
    OpenAI error body with status 200 (docs/streaming.md)."""
    try:
        yield KEEPALIVE_BYTE
        try:
            async for item in run.items(keepalive=service.settings.keepalive_interval):
                if item is KEEPALIVE:
                    yield KEEPALIVE_BYTE
                    continue
                aggregator.add(item)  # type: ignore[arg-type]
            body = aggregator.result()
        except BridgeError as exc:
            _log_failure(exc)
            yield _json.encode(exc.body())
            return
        yield _json.encode(body)
    finally:
        service.spawn(run.aclose())
