"""Thin Litestar handlers binding the Dify Service API paths to the emulator."""

from __future__ import annotations

import contextlib
import mimetypes
import time
from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Stream

from . import errors
from .console import CONSOLE_ROUTER
from .dialect import adapt_metadata, event_encoder
from .dify_http import not_found_page
from .dsl import CHAT_MODES, AppSpec
from .file_routes import tool_file
from .service import (
    Emulator,
    GenerationRequest,
    check_pinned_workflow,
    new_context,
    open_conversation,
    parse_generation,
    parse_json_body,
    require_user,
    resolve_files,
    run_pipeline,
    validate_inputs,
)
from .site import site_of, tool_icons
from .store import UploadedFile, new_id, now
from .streaming import collect, ping_then_hang, relay
from .versions import DeleteConversation, DifyProfile
from .wire import blocking_json, flask_json


def emulator_of(request: Request) -> Emulator:
    return request.app.state.emulator


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=flask_json(obj), status_code=status, media_type="application/json", headers=headers
    )


def dify_error_handler(request: Request, exc: errors.DifyError) -> Response:
    profile = emulator_of(request).profile
    headers = None
    if exc.status == 401 and profile.www_authenticate:
        headers = {"WWW-Authenticate": 'Bearer realm="api"'}
    return json_response(exc.body_for(profile), exc.status, headers)


def _sse(body) -> Stream:
    return Stream(body, media_type="text/event-stream")  # Litestar adds "; charset=utf-8"


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _app(request: Request) -> AppSpec:
    """The app whose key the request carries (401 otherwise, as recordings 10/11a/11b)."""
    return emulator_of(request).authenticate(request.headers.get("authorization"))


async def _body(request: Request) -> dict[str, Any]:
    return parse_json_body(request.headers.get("content-type"), await request.body())


# --- generation -------------------------------------------------------------------------------


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
    payload = await _body(request)
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
                return _sse(ping_then_hang(emulator.idle_timeout))
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
                return _sse(ping_then_hang(emulator.start_failure_hold))
            raise
    files = resolve_files(app, emulator.store, gen.files, _base_url(request))
    ctx = new_context(emulator, app, user, gen, conversation, files)
    ctx.base_url = _base_url(request)

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

        return _sse(
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
    app = _app(request)
    if app.mode not in CHAT_MODES:
        raise errors.not_chat_app()
    return await _generate(request, app, "/v1/chat-messages", "ChatRequestPayload", True)


@post("/v1/completion-messages", status_code=200)
async def completion_messages(request: Request) -> Response:
    app = _app(request)
    if app.mode != "completion":
        raise errors.app_unavailable()
    return await _generate(
        request, app, "/v1/completion-messages", "CompletionRequestPayload", False
    )


@post("/v1/workflows/run", status_code=200)
async def workflows_run(request: Request) -> Response:
    app = _app(request)
    if app.mode != "workflow":
        raise errors.not_workflow_app()
    return await _generate(request, app, "/v1/workflows/run", "WorkflowRunPayload", False)


@post("/v1/workflows/{workflow_id:str}/run", status_code=200)
async def workflows_run_pinned(request: Request, workflow_id: FromPath[str]) -> Response:
    """Version pinning (Dify ≥1.7.2); before that the route does not exist (HTML 404)."""
    if not emulator_of(request).profile.workflow_pinning:
        return not_found_page(request)
    app = _app(request)
    if app.mode != "workflow":
        raise errors.not_workflow_app()
    return await _generate(
        request, app, "/v1/workflows/run", "WorkflowRunPayload", False, workflow_id
    )


# --- stop -------------------------------------------------------------------------------------


async def _stop(request: Request, task_id: str, allowed: set[str], mismatch) -> Response:
    emulator = emulator_of(request)
    app = _app(request)
    if app.mode not in allowed:
        raise mismatch()
    require_user(await _body(request))
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


# --- app description --------------------------------------------------------------------------

_SYSTEM_PARAMETERS = {
    "image_file_size_limit": 10,
    "video_file_size_limit": 100,
    "audio_file_size_limit": 50,
    "file_size_limit": 15,
    "workflow_file_upload_limit": 10,
}


@get("/v1/parameters")
async def parameters(request: Request) -> Response:
    app = _app(request)
    source = app.features if app.is_graph else app.model_config
    off = {"enabled": False}
    body = {
        "opening_statement": source.get("opening_statement") or "",
        "suggested_questions": source.get("suggested_questions") or [],
        "suggested_questions_after_answer": source.get("suggested_questions_after_answer") or off,
        "speech_to_text": source.get("speech_to_text") or off,
        "text_to_speech": source.get("text_to_speech") or off,
        "retriever_resource": source.get("retriever_resource") or off,
        "annotation_reply": source.get("annotation_reply") or off,
        "more_like_this": source.get("more_like_this") or off,
        "user_input_form": app.user_input_form,
        "sensitive_word_avoidance": source.get("sensitive_word_avoidance") or off,
        "file_upload": app.file_upload,
        "system_parameters": _SYSTEM_PARAMETERS,
    }
    return json_response(body)


@get("/v1/")
async def index(request: Request) -> Response:
    """No key needed, on every release (index.py: IndexApi)."""
    version = emulator_of(request).profile.version
    body = {"welcome": "Dify OpenAPI", "api_version": "v1", "server_version": version}
    return json_response(body)


@get("/v1/info")
async def info(request: Request) -> Response:
    profile = emulator_of(request).profile
    app = _app(request)
    body: dict[str, Any] = {"name": app.name, "description": app.description, "tags": []}
    if profile.info_mode:  # 1.4.0+
        body["mode"] = app.mode
    if profile.info_author_name:  # 1.4.3+
        body["author_name"] = "admin"
    return json_response(body)


@get("/v1/meta")
async def meta(request: Request) -> Response:
    return json_response({"tool_icons": tool_icons(_app(request), _base_url(request))})


@get("/v1/site")
async def site(request: Request) -> Response:
    if not emulator_of(request).profile.site_route:  # added in 1.4.0
        return not_found_page(request)
    return json_response(site_of(_app(request)))  # 16b


# --- conversations and messages ---------------------------------------------------------------


@get("/v1/conversations")
async def conversations(request: Request) -> Response:
    emulator = emulator_of(request)
    app = _app(request)
    if app.mode not in CHAT_MODES:
        raise errors.not_chat_app()
    limit = int(request.query_params.get("limit") or 20)
    user = request.query_params.get("user")
    found = emulator.store.conversations_of(app.key, user) if user else []  # 17b
    data = [c.to_api() for c in found[:limit]]
    return json_response({"limit": limit, "has_more": len(found) > limit, "data": data})


@get("/v1/messages")
async def messages(request: Request) -> Response:
    emulator = emulator_of(request)
    app = _app(request)
    if app.mode not in CHAT_MODES:
        raise errors.not_chat_app()
    query = dict(request.query_params)
    if "conversation_id" not in query:
        raise errors.validation_error(
            "MessageListQuery",
            [("conversation_id", "Field required", "missing", query, "missing")],
            errors.ReqparseError(
                "conversation_id", "Missing required parameter in the query string"
            ),
        )
    conv = emulator.store.find_conversation(
        app.key, query.get("user") or "", query["conversation_id"]
    )
    if conv is None:
        raise errors.conversation_not_found("/v1/messages")
    limit = int(query.get("limit") or 20)
    items = conv.messages[-limit:]
    if emulator.profile.messages_newest_first:  # 1.0.0 only (message.py@c0358d8d0:73)
        items = list(reversed(items))
    return json_response(
        {
            "limit": limit,
            "has_more": len(conv.messages) > limit,
            "data": [m.to_api() for m in items],
        }
    )


@delete("/v1/conversations/{conversation_id:str}", status_code=200)
async def delete_conversation(request: Request, conversation_id: FromPath[str]) -> Response:
    """200 + `{"result":"success"}` before 1.3.1, 204 after (dify-versions.md §1.1)."""
    emulator = emulator_of(request)
    app = _app(request)
    if app.mode not in CHAT_MODES:
        raise errors.not_chat_app()
    payload: dict[str, Any] = {}
    if "application/json" in (request.headers.get("content-type") or ""):
        payload = await _body(request)
    user = str(payload.get("user") or "DEFAULT-USER")
    conv = emulator.store.find_conversation(app.key, user, conversation_id)
    if conv is None:
        raise errors.conversation_not_found(f"/v1/conversations/{conversation_id}")
    del emulator.store.conversations[conv.id]
    if emulator.profile.delete_conversation is DeleteConversation.OK_JSON:
        return json_response({"result": "success"})
    # 1.3.1–1.13.0 return the JSON body with the 204, but HTTP/1.1 forbids a body there and
    # clients drop it; 1.13.1+ send none.
    return Response(content=b"", status_code=204)


# --- files ------------------------------------------------------------------------------------


@post("/v1/files/upload", status_code=201)
async def upload_file(request: Request) -> Response:
    emulator = emulator_of(request)
    _app(request)
    form = await request.form()
    upload = form.get("file")
    user = str(form.get("user") or "DEFAULT-USER")
    entry = request.scope.get("state", {}).get("journal_entry")
    if isinstance(upload, UploadFile):
        content = await upload.read()
        if entry is not None:
            entry["form"] = {
                "user": user,
                "file": {"filename": upload.filename, "size": len(content)},
            }
    else:
        if entry is not None:
            entry["form"] = {k: v for k, v in form.items() if isinstance(v, str)}
        raise errors.DifyError("no_file_uploaded", "Please upload your file.", 400)  # 19b
    name = upload.filename or "file"
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    mime = upload.content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    stored = UploadedFile(
        id=new_id(),
        name=name,
        size=len(content),
        extension=extension,
        mime_type=mime,
        user=emulator.end_user_id(_app(request), user),
        created_at=now(),
        content=content,
    )
    emulator.store.files[stored.id] = stored
    return json_response(stored.to_api(_base_url(request)), 201)


# --- test journal -----------------------------------------------------------------------------


async def record_request(request: Request) -> None:
    """before_request hook: every /v1/* call goes into the journal, stop calls included."""
    path = request.url.path
    if "/v1/" not in path:
        return
    emulator = emulator_of(request)
    app_name = None
    with contextlib.suppress(errors.DifyError):
        app_name = _app(request).name
    entry: dict[str, Any] = {
        "method": request.method,
        "path": path,
        "query": dict(request.query_params),
        "json": None,
        "form": None,
        "time": time.time(),
        "app": app_name,
    }
    if "application/json" in (request.headers.get("content-type") or ""):
        try:
            entry["json"] = parse_json_body("application/json", await request.body())
        except errors.DifyError:
            entry["json"] = None
    request.scope.setdefault("state", {})["journal_entry"] = entry
    emulator.store.journal.append(entry)


@get("/_emulator/journal")
async def get_journal(request: Request) -> Response:
    return json_response(list(emulator_of(request).store.journal))


@delete("/_emulator/journal", status_code=204)
async def clear_journal(request: Request) -> None:
    emulator_of(request).store.journal.clear()


@get("/_emulator/files/{file_id:str}")
async def get_file(request: Request, file_id: FromPath[str]) -> Response:
    stored = emulator_of(request).store.files.get(file_id)
    if stored is None:
        raise errors.DifyError("not_found", "File not found.", 404)
    return Response(content=stored.content, media_type=stored.mime_type)


ROUTES = [
    chat_messages,
    completion_messages,
    workflows_run,
    workflows_run_pinned,
    stop_chat,
    stop_completion,
    stop_workflow,
    parameters,
    index,
    info,
    meta,
    site,
    conversations,
    messages,
    delete_conversation,
    upload_file,
    get_journal,
    clear_journal,
    get_file,
    tool_file,
    CONSOLE_ROUTER,  # /console/api: console.py
]
