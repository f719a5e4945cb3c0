"""POST /v1/chat/completions (and /chat/completions: clients join base URLs differently)."""

from __future__ import annotations

import msgspec
import structlog
from litestar import Request, Response, post

from bridge.engine import ChatService, complete, event_stream, padded_completion
from bridge.http.housekeeping import housekeeping_reply
from bridge.http.routes.body import CONVERSATION_HEADER, conversation_headers, decode_body
from bridge.openai.types import ChatCompletionRequest
from bridge.routing import ModelRegistry, credential_from_header
from bridge.settings import Settings
from bridge.translate.openai_out import ChunkEncoder, CompletionAggregator

_decoder = msgspec.json.Decoder(ChatCompletionRequest)
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# For a new conversation the id arrives with Dify's first event; wait this long for it so the
# response header can carry it, without holding back the stream's first byte for long.
HEADER_WAIT_SECONDS = 1.0
CLIENT_CLOSED = 499  # nginx's code for "client closed request"; nobody reads it


def decode_chat_request(body: bytes) -> ChatCompletionRequest:
    return decode_body(body, _decoder, "a chat completion request")


@post(["/v1/chat/completions", "/chat/completions"], status_code=200)
async def chat_completions(request: Request) -> Response:
    state = request.app.state
    service: ChatService = state.chat_service
    registry: ModelRegistry = state.registry
    chat = decode_chat_request(await request.body())
    # Bound at once so that even a request refused later is logged under its model.
    structlog.contextvars.bind_contextvars(model=chat.model)
    credential = credential_from_header(request.headers.get("authorization"))
    route = registry.resolve(chat.model, credential)
    # Chat-UI housekeeping (titles, tags, follow-ups…) is answered here without a Dify run,
    # unless the model's `background_tasks` says otherwise (issue 11; bridge.http.housekeeping).
    task_name = service.settings.task_header
    task = request.headers.get(task_name) if task_name else None
    if (local := housekeeping_reply(chat, route, task_header=task)) is not None:
        return local
    settings = service.settings
    turn = await service.prepare(
        chat,
        route,
        credential,
        pinned=request.headers.get(CONVERSATION_HEADER) or chat.conversation_id,
        chat_key=request.headers.get(settings.conversation_key_header),
        task_header=request.headers.get(settings.task_header) if settings.task_header else None,
    )
    structlog.contextvars.bind_contextvars(mode=turn.mode, conversation=turn.context.plan.reason)
    run = await service.start(turn)
    reasoning_format = service.reasoning_format(route)
    if chat.stream:
        await run.wait_started(HEADER_WAIT_SECONDS)
        encoder = ChunkEncoder(
            chat.model,
            include_usage=bool(chat.stream_options and chat.stream_options.include_usage),
            reasoning_format=reasoning_format,  # type: ignore[arg-type]
        )
        return event_stream(run, encoder, service, conversation_headers(run, STREAM_HEADERS))
    aggregator = CompletionAggregator(chat.model, reasoning_format=reasoning_format)  # type: ignore[arg-type]
    if _nonstream_keepalive(service.settings, route.config.nonstream_keepalive):
        await run.wait_started(HEADER_WAIT_SECONDS)
        return padded_completion(
            run, aggregator, service, conversation_headers(run, STREAM_HEADERS)
        )
    completion = await complete(request, run, aggregator, service)
    if completion is None:
        return Response(b"", status_code=CLIENT_CLOSED)
    return Response(completion, headers=conversation_headers(run, {}))


def _nonstream_keepalive(settings: Settings, per_model: bool | None) -> bool:
    return settings.nonstream_keepalive if per_model is None else per_model
