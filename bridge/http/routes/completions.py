"""POST /v1/completions (and /completions): the legacy text-completion API, on the chat engine.

llama-index's `OpenAILike` (default `is_chat_model=False`) and many older tools call it.
"""

from __future__ import annotations

import msgspec
import structlog
from litestar import Request, Response, post
from litestar.response import Stream

from bridge.engine import ChatService, complete, event_stream
from bridge.http.routes.body import conversation_headers, decode_body
from bridge.http.routes.chat import (
    CLIENT_CLOSED,
    HEADER_WAIT_SECONDS,
    STREAM_HEADERS,
)
from bridge.openai.responses import CompletionRequest
from bridge.routing import ModelRegistry, credential_from_header
from bridge.translate.completions import (
    TextCompletionAggregator,
    TextCompletionEncoder,
    chat_request_for_completion,
)

_decoder = msgspec.json.Decoder(CompletionRequest)


def decode_completion_request(body: bytes) -> CompletionRequest:
    return decode_body(body, _decoder, "a completion request")


@post(["/v1/completions", "/completions"], status_code=200)
async def create_completion(request: Request) -> Response | Stream:
    state = request.app.state
    service: ChatService = state.chat_service
    registry: ModelRegistry = state.registry
    body = decode_completion_request(await request.body())
    structlog.contextvars.bind_contextvars(model=body.model)
    credential = credential_from_header(request.headers.get("authorization"))
    route = registry.resolve(body.model, credential)
    chat = chat_request_for_completion(body)
    turn = await service.prepare(chat, route, credential)
    structlog.contextvars.bind_contextvars(mode=turn.mode, conversation=turn.context.plan.reason)
    run = await service.start(turn)
    think = service.reasoning_format(route) == "think"
    if body.stream:
        await run.wait_started(HEADER_WAIT_SECONDS)
        options = body.stream_options if isinstance(body.stream_options, dict) else {}
        encoder = TextCompletionEncoder(
            body.model, include_usage=bool(options.get("include_usage")), think=think
        )
        return event_stream(run, encoder, service, conversation_headers(run, STREAM_HEADERS))
    aggregator = TextCompletionAggregator(body.model, think=think)
    result = await complete(request, run, aggregator, service)  # type: ignore[arg-type]
    if result is None:
        return Response(b"", status_code=CLIENT_CLOSED)
    return Response(result, headers=conversation_headers(run, {}))
