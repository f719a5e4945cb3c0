"""POST /v1/chat/completions (and /chat/completions: clients join base URLs differently)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import msgspec
import structlog
from litestar import Request, Response, post
from litestar.response import Stream

from bridge.errors import BridgeError, bad_request
from bridge.openai.types import ChatCompletion, ChatCompletionRequest
from bridge.routing import ModelRegistry, credential_from_header
from bridge.serving import KEEPALIVE, ChatService, DifyRun
from bridge.settings import Settings
from bridge.translate.openai_out import ChunkEncoder, CompletionAggregator, sse_comment
from bridge.translate.stream import Failed

log = structlog.get_logger("bridge.chat")

_decoder = msgspec.json.Decoder(ChatCompletionRequest)
CONVERSATION_HEADER = "X-Dify-Conversation-Id"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# For a new conversation the id arrives with Dify's first event; wait this long for it so the
# response header can carry it, without holding back the stream's first byte for long.
HEADER_WAIT_SECONDS = 1.0
KEEPALIVE_BYTE = b" "
CLIENT_CLOSED = 499  # nginx's code for "client closed request"; nobody reads it
_json = msgspec.json.Encoder()


def decode_chat_request(body: bytes) -> ChatCompletionRequest:
    if not body.strip():
        raise bad_request("The request body is empty; expected a JSON chat completion request.")
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).rpartition(" - at ")
        param = where.strip("`").removeprefix("$.") if where else None
        raise bad_request(f"Invalid request: {message or exc}", param=param or None) from None
    except msgspec.DecodeError:
        raise bad_request(
            "We could not parse the JSON body of your request. "
            "(HINT: This likely means you aren't using your HTTP library correctly.)"
        ) from None


@post(["/v1/chat/completions", "/chat/completions"], status_code=200)
async def chat_completions(request: Request) -> Response | Stream:
    state = request.app.state
    service: ChatService = state.chat_service
    registry: ModelRegistry = state.registry
    chat = decode_chat_request(await request.body())
    credential = credential_from_header(request.headers.get("authorization"))
    route = registry.resolve(chat.model, credential)
    settings = service.settings
    turn = await service.prepare(
        chat,
        route,
        credential,
        pinned=request.headers.get(CONVERSATION_HEADER) or chat.conversation_id,
        chat_key=request.headers.get(settings.conversation_key_header),
        task_header=request.headers.get(settings.task_header) if settings.task_header else None,
    )
    structlog.contextvars.bind_contextvars(
        model=chat.model, mode=turn.mode, conversation=turn.context.plan.reason
    )
    run = await service.start(turn)
    reasoning_format = service.reasoning_format(route)
    if chat.stream:
        await run.wait_started(HEADER_WAIT_SECONDS)
        encoder = ChunkEncoder(
            chat.model,
            include_usage=bool(chat.stream_options and chat.stream_options.include_usage),
            reasoning_format=reasoning_format,  # type: ignore[arg-type]
        )
        return Stream(
            _frames(run, encoder, service),
            media_type="text/event-stream",
            headers=_headers(run, STREAM_HEADERS),
        )
    aggregator = CompletionAggregator(chat.model, reasoning_format=reasoning_format)  # type: ignore[arg-type]
    if _nonstream_keepalive(service.settings, route.config.nonstream_keepalive):
        await run.wait_started(HEADER_WAIT_SECONDS)
        return Stream(
            _padded_completion(run, aggregator, service),
            media_type="application/json",
            headers=_headers(run, STREAM_HEADERS),
        )
    try:
        completion = await _unless_client_leaves(request, _aggregate(run, aggregator))
    finally:
        service.spawn(run.aclose())
    if completion is None:
        return Response(b"", status_code=CLIENT_CLOSED)
    return Response(completion, headers=_headers(run, {}))


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


def _headers(run: DifyRun, base: dict[str, str]) -> dict[str, str]:
    headers = dict(base)
    if run.conversation_id:
        headers[CONVERSATION_HEADER] = run.conversation_id
    return headers


def _nonstream_keepalive(settings: Settings, per_model: bool | None) -> bool:
    return settings.nonstream_keepalive if per_model is None else per_model


def _log_failure(error: BridgeError) -> None:
    # After the status line went out this is the only trace of the failure on our side;
    # the request id comes from the bound context (bridge.access.RequestContext).
    log.warning("run_failed", status=error.status, code=error.code, error=error.message)


async def _frames(
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


async def _padded_completion(
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
