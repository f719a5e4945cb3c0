"""The generation endpoints (chat, completion, workflow run, pinned workflow run) and their stop
endpoints: checks (payload.py) → run set-up (service.py) → a stream or a blocking answer."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.params import FromPath

from . import errors
from .dialect import adapt_metadata, event_encoder
from .dify_http import not_found_page
from .dsl import CHAT_MODES, AppSpec
from .handlers import app_of, base_url, emulator_of, json_body, json_response, sse
from .payload import (
    GenerationRequest,
    check_pinned_workflow,
    parse_generation,
    require_user,
    resolve_files,
    validate_inputs,
)
from .service import new_context, open_conversation, run_pipeline
from .streaming import collect, ping_then_hang, relay
from .versions import DifyProfile
from .wire import blocking_json


async def _generate(
    request: Request,
    app: AppSpec,
    route: str,
    model: str,
    needs_query: bool,
    pinned_workflow: str = "",
):
    emulator = emulator_of(request)
    profile = emulator.profile
    payload = await json_body(request)
    user = require_user(payload)
    gen = parse_generation(payload, model, needs_query)
    if app.is_graph and profile.workflow_pinning:
        # before 1.7.2 the parser drops `workflow_id` and the latest workflow runs
        check_pinned_workflow(app, pinned_workflow or gen.workflow_id)
    # 1.13.x runs streamed graphs in a worker: a start it refuses is a ping and silence there;
    # older releases (and every blocking call) answer the 404/400 at once.
    graph_stream = app.is_graph and gen.streaming and profile.graph_streams_in_worker
    if app.mode == "agent-chat" and not gen.streaming:
        raise errors.invalid_param("Agent Chat App does not support blocking mode")
    conversation = None
    if app.mode in CHAT_MODES:
        conversation = open_conversation(emulator, app, user, gen)
        if conversation is None:
            if graph_stream:
                # 13a: the streamed run fails inside the worker; the client only sees a ping and
                # then silence until Dify's idle timeout.
                return sse(ping_then_hang(emulator.idle_timeout))
            raise errors.conversation_not_found(route)
    if conversation is not None and gen.conversation_id and not profile.inputs_every_turn:
        # 0.15.3: a follow-up turn runs with the conversation's stored inputs, unchecked
        # (chat/app_generator.py@ca19bd31d:144-148).
        gen.inputs = dict(conversation.inputs)
    else:
        try:
            gen.inputs = validate_inputs(app, gen.inputs)
        except errors.DifyError:
            if graph_stream:
                # 07b: the run fails inside Dify's worker before its first event; the client
                # sees one ping, then nothing until the relay's idle timeout (~300 s, issue 14).
                return sse(ping_then_hang(emulator.start_failure_hold))
            raise
    files = resolve_files(app, emulator.store, gen.files, base_url(request))
    ctx = new_context(emulator, app, user, gen, conversation, files)
    ctx.base_url = base_url(request)

    async def pipeline(emit) -> None:
        await run_pipeline(ctx, emit)

    if gen.streaming:
        run_number = emulator.next_run_number(app) if app.is_graph else None
        # ≤1.10: the pipeline joins the title thread of a new conversation before the stream
        # ends (advanced_chat/generate_task_pipeline.py@ca19bd31d:650-651).
        titles = (
            profile.title_blocks_stream_end
            and app.mode in CHAT_MODES
            and not gen.conversation_id
            and gen.auto_generate_name
        )

        def hold_open() -> float:
            if ctx.hold_open and profile.graph_streams_in_worker:
                return emulator.idle_timeout  # 44c: no workflow end ever reaches the relay
            return emulator.title_wait if titles else 0.0

        return sse(
            relay(
                pipeline,
                ping_interval=emulator.ping_interval,
                initial_ping=app.is_graph and profile.graph_streams_in_worker,
                hold_open=hold_open,
                encode=event_encoder(profile, run_number),
            )
        )
    await collect(pipeline)
    return _blocking(ctx, gen, profile)


def _blocking(ctx, gen: GenerationRequest, profile: DifyProfile) -> Response:
    app = ctx.app
    if ctx.error_code == "internal_server_error":
        # an unexpected exception in the app runner: the controller's InternalServerError()
        raise errors.DifyError(
            "internal_server_error",
            "The server encountered an internal error and was unable to complete your request. "
            "Either the server is overloaded or there is an error in the application.",
            500,
        )
    if app.mode == "workflow":
        body = {
            "task_id": ctx.task_id,
            "workflow_run_id": ctx.workflow_run_id,
            "data": {
                "id": ctx.workflow_run_id,
                "workflow_id": app.workflow_id,
                "status": ctx.status,
                "outputs": ctx.outputs,
                "error": ctx.error,
                "elapsed_time": ctx.elapsed,
                "total_tokens": ctx.total_tokens,
                "total_steps": ctx.total_steps,
                "created_at": ctx.created_at,
                "finished_at": ctx.finished_at,
            },
        }
        return _blocking_response(body, profile)
    if ctx.status == "failed":
        raise errors.invalid_param(f"Run failed: {ctx.error}")  # 27b, 34f
    if ctx.error_code:
        raise errors.DifyError(ctx.error_code, ctx.error or "", 400)  # 34b
    from . import llm

    body: dict[str, Any] = {
        "event": "message",
        "task_id": ctx.task_id,
        "id": ctx.message_id,
        "message_id": ctx.message_id,
    }
    if app.mode != "completion":
        body["conversation_id"] = ctx.conversation_id
    body["mode"] = app.mode
    body["answer"] = ctx.answer
    metadata = llm.metadata(ctx.usage or llm.usage(0, 0, 0.0, zero=True))
    body["metadata"] = metadata if profile.is_default else adapt_metadata(profile, metadata)
    body["created_at"] = ctx.created_at
    return _blocking_response(body, profile)


def _blocking_response(body: dict[str, Any], profile: DifyProfile) -> Response:
    media_type = "application/json"
    if profile.blocking_charset:  # 1.11.1+
        media_type += "; charset=utf-8"
    return Response(content=blocking_json(body), status_code=200, media_type=media_type)


@post("/v1/chat-messages", status_code=200)
async def chat_messages(request: Request) -> Response:
    app = app_of(request)
    if app.mode not in CHAT_MODES:
        raise errors.not_chat_app()
    return await _generate(request, app, "/v1/chat-messages", "ChatRequestPayload", True)


@post("/v1/completion-messages", status_code=200)
async def completion_messages(request: Request) -> Response:
    app = app_of(request)
    if app.mode != "completion":
        raise errors.app_unavailable()
    return await _generate(
        request, app, "/v1/completion-messages", "CompletionRequestPayload", False
    )


@post("/v1/workflows/run", status_code=200)
async def workflows_run(request: Request) -> Response:
    app = app_of(request)
    if app.mode != "workflow":
        raise errors.not_workflow_app()
    return await _generate(request, app, "/v1/workflows/run", "WorkflowRunPayload", False)


@post("/v1/workflows/{workflow_id:str}/run", status_code=200)
async def workflows_run_pinned(request: Request, workflow_id: FromPath[str]) -> Response:
    """Version pinning (Dify ≥1.7.2); before that the route does not exist (HTML 404)."""
    if not emulator_of(request).profile.workflow_pinning:
        return not_found_page(request)
    app = app_of(request)
    if app.mode != "workflow":
        raise errors.not_workflow_app()
    return await _generate(
        request, app, "/v1/workflows/run", "WorkflowRunPayload", False, workflow_id
    )


# --- stop -------------------------------------------------------------------------------------


async def _stop(request: Request, task_id: str, allowed: set[str], mismatch) -> Response:
    emulator = emulator_of(request)
    app = app_of(request)
    if app.mode not in allowed:
        raise mismatch()
    require_user(await json_body(request))
    # Always success, also for unknown tasks and other users (23c, 23d).
    emulator.store.stop_task(task_id)
    return json_response({"result": "success"})


@post("/v1/chat-messages/{task_id:str}/stop", status_code=200)
async def stop_chat(request: Request, task_id: FromPath[str]) -> Response:
    return await _stop(request, task_id, set(CHAT_MODES), errors.not_chat_app)


@post("/v1/completion-messages/{task_id:str}/stop", status_code=200)
async def stop_completion(request: Request, task_id: FromPath[str]) -> Response:
    return await _stop(request, task_id, {"completion"}, errors.app_unavailable)


@post("/v1/workflows/tasks/{task_id:str}/stop", status_code=200)
async def stop_workflow(request: Request, task_id: FromPath[str]) -> Response:
    return await _stop(request, task_id, {"workflow"}, errors.not_workflow_app)
