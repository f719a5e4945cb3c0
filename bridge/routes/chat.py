"""POST /v1/chat/completions (and /chat/completions: clients join base URLs differently)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import structlog
from litestar import Request, Response, post
from litestar.response import Stream

from bridge.errors import BridgeError, bad_request
from bridge.openai.types import ChatCompletionRequest
from bridge.routing import ModelRegistry, credential_from_header
from bridge.serving import KEEPALIVE, ChatService, DifyRun
from bridge.translate.openai_out import ChunkEncoder, CompletionAggregator, sse_comment

log = structlog.get_logger("bridge.chat")

_decoder = msgspec.json.Decoder(ChatCompletionRequest)
CONVERSATION_HEADER = "X-Dify-Conversation-Id"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# For a new conversation the id arrives with Dify's first event; wait this long for it so the
# response header can carry it, without holding back the stream's first byte for long.
HEADER_WAIT_SECONDS = 1.0


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
    structlog.contextvars.bind_contextvars(model=chat.model, mode=turn.mode)
    run = await service.start(turn)
    reasoning_format = service.reasoning_format(route)
    if chat.stream:
        await run.wait_started(HEADER_WAIT_SECONDS)
        encoder = ChunkEncoder(
            chat.model,
            include_usage=bool(chat.stream_options and chat.stream_options.include_usage),
            reasoning_format=reasoning_format,  # type: ignore[arg-type]
        )
        headers = dict(STREAM_HEADERS)
        if run.conversation_id:
            headers[CONVERSATION_HEADER] = run.conversation_id
        return Stream(
            _frames(run, encoder, service),
            media_type="text/event-stream",
            headers=headers,
        )
    try:
        aggregator = CompletionAggregator(chat.model, reasoning_format=reasoning_format)  # type: ignore[arg-type]
        async for item in run.items(keepalive=None):
            if item is not KEEPALIVE:
                aggregator.add(item)  # type: ignore[arg-type]
        completion = aggregator.result()
    finally:
        service.spawn(run.aclose())
    headers = {CONVERSATION_HEADER: run.conversation_id} if run.conversation_id else {}
    return Response(completion, headers=headers)


async def _frames(
    run: DifyRun, encoder: ChunkEncoder, service: ChatService
) -> AsyncIterator[bytes]:
    try:
        yield encoder.start()
        async for item in run.items(keepalive=service.settings.keepalive_interval):
            if item is KEEPALIVE:
                yield sse_comment("keepalive")
                continue
            for frame in encoder.encode(item):  # type: ignore[arg-type]
                yield frame
    except BridgeError as exc:  # pragma: no cover - items() reports failures as items
        log.warning("stream_failed", error=exc.message)
    finally:
        # Runs on normal end and when the client went away (the generator is closed):
        # stopping Dify must survive the cancelled request task.
        service.spawn(run.aclose())
