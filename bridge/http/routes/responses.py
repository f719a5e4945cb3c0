"""POST /v1/responses, GET and DELETE /v1/responses/{id} (and the same without /v1).

Served by the chat engine: the Responses request becomes a chat request
(`bridge.translate.responses`), `ChatService` prepares and starts the Dify run, and the
delivery functions frame it with a Responses encoder/aggregator. `previous_response_id`
continues the Dify conversation and `item_reference` inputs are resolved from the response
store, both for the key that stored them only (`bridge.conversations.response_keeper`).
"""

from __future__ import annotations

import msgspec
import structlog
from litestar import Request, Response, delete, get, post
from litestar.params import FromPath
from litestar.response import Stream

from bridge.conversations.response_keeper import (
    ResponseRecorder,
    continuation,
    owned_response,
    owner_of,
    referenced_items,
)
from bridge.conversations.responses import ResponseStore, StoredResponse
from bridge.engine import ChatService, PreparedTurn, complete, event_stream, padded_completion
from bridge.errors import BridgeError
from bridge.http.routes.body import conversation_headers, decode_body
from bridge.http.routes.chat import (
    CLIENT_CLOSED,
    HEADER_WAIT_SECONDS,
    STREAM_HEADERS,
)
from bridge.openai.responses import DeletedResponse, ResponseCreateRequest, ResponseObject
from bridge.routing import ModelRegistry, credential_from_header
from bridge.translate.request import dify_user
from bridge.translate.responses import chat_request_for
from bridge.translate.responses_out import ResponseAggregator, ResponseBuilder, ResponseEncoder

_decoder = msgspec.json.Decoder(ResponseCreateRequest)


def decode_response_request(body: bytes) -> ResponseCreateRequest:
    return decode_body(body, _decoder, "a Responses request")


@post(["/v1/responses", "/responses"], status_code=200)
async def create_response(request: Request) -> Response | Stream:
    state = request.app.state
    service: ChatService = state.chat_service
    registry: ModelRegistry = state.registry
    store: ResponseStore = state.response_store
    body = decode_response_request(await request.body())
    structlog.contextvars.bind_contextvars(model=body.model)
    credential = credential_from_header(request.headers.get("authorization"))
    route = registry.resolve(body.model, credential)
    owner = owner_of(credential)
    follow = await continuation(
        store, body.previous_response_id, route=route, owner=owner, user=body.user
    )
    references = await referenced_items(store, body.input, owner=owner)
    chat = chat_request_for(body, follow.history, references=references, user=follow.user)
    user = dify_user(chat.user, credential)
    turn = await _prepare(service, chat, route, credential, follow.pinned)
    structlog.contextvars.bind_contextvars(mode=turn.mode, conversation=turn.context.plan.reason)
    run = await service.start(turn)
    builder = ResponseBuilder(body, replace_in_place=not body.stream)
    recorder = ResponseRecorder(
        store,
        builder,
        chat=chat,
        route=route,
        user=user,
        owner=owner,
        enabled=body.store is not False,
    )
    if body.stream:
        await run.wait_started(HEADER_WAIT_SECONDS)
        return event_stream(
            run,
            ResponseEncoder(builder),
            service,
            conversation_headers(run, STREAM_HEADERS),
            before_send=lambda: recorder.record(run),
        )
    aggregator = ResponseAggregator(builder)
    keepalive = route.config.nonstream_keepalive
    if service.settings.nonstream_keepalive if keepalive is None else keepalive:
        await run.wait_started(HEADER_WAIT_SECONDS)
        return padded_completion(
            run,
            aggregator,
            service,
            conversation_headers(run, STREAM_HEADERS),
            before_send=lambda: recorder.record(run),
        )
    result = await complete(request, run, aggregator, service)  # type: ignore[arg-type]
    if result is None:
        return Response(b"", status_code=CLIENT_CLOSED)
    await recorder.record(run)
    return Response(result, headers=conversation_headers(run, {}))


async def _prepare(
    service: ChatService,
    chat: object,
    route: object,
    credential: str | None,
    pinned: str | None,
) -> PreparedTurn:
    try:
        return await service.prepare(chat, route, credential, pinned=pinned)  # type: ignore[arg-type]
    except BridgeError as exc:
        if not pinned or exc.code != "conversation_not_found":
            raise
    # Dify no longer has the conversation: fork from the stored history instead of failing.
    structlog.get_logger("bridge.responses").warning(
        "dify_conversation_lost", conversation_id=pinned
    )
    return await service.prepare(chat, route, credential)  # type: ignore[arg-type]


async def _owned(request: Request, response_id: str) -> StoredResponse:
    """GET and DELETE follow the rule of `previous_response_id`: the key that created it."""
    registry: ModelRegistry = request.app.state.registry
    store: ResponseStore = request.app.state.response_store
    credential = credential_from_header(request.headers.get("authorization"))
    registry.authenticate(credential)  # a wrong key is a 401, as everywhere
    return await owned_response(store, response_id, owner_of(credential))


@get(["/v1/responses/{response_id:str}", "/responses/{response_id:str}"])
async def retrieve_response(request: Request, response_id: FromPath[str]) -> ResponseObject:
    return (await _owned(request, response_id)).response


@delete(["/v1/responses/{response_id:str}", "/responses/{response_id:str}"], status_code=200)
async def delete_response(request: Request, response_id: FromPath[str]) -> DeletedResponse:
    await _owned(request, response_id)
    store: ResponseStore = request.app.state.response_store
    await store.delete(response_id)
    return DeletedResponse(id=response_id)
