"""What the Service API tells about an app (`/v1/parameters`, `/v1/`, `/v1/info`, `/v1/meta`,
`/v1/site`) and its conversations and messages (list, history, delete)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get
from litestar.params import FromPath

from . import errors
from .dify_http import not_found_page
from .dsl import CHAT_MODES
from .handlers import app_of, base_url, emulator_of, json_body, json_response
from .site import site_of, tool_icons
from .versions import DeleteConversation

_SYSTEM_PARAMETERS = {
    "image_file_size_limit": 10,
    "video_file_size_limit": 100,
    "audio_file_size_limit": 50,
    "file_size_limit": 15,
    "workflow_file_upload_limit": 10,
}


@get("/v1/parameters")
async def parameters(request: Request) -> Response:
    app = app_of(request)
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
    app = app_of(request)
    body: dict[str, Any] = {"name": app.name, "description": app.description, "tags": []}
    if profile.info_mode:  # 1.4.0+
        body["mode"] = app.mode
    if profile.info_author_name:  # 1.4.3+
        body["author_name"] = "admin"
    return json_response(body)


@get("/v1/meta")
async def meta(request: Request) -> Response:
    return json_response({"tool_icons": tool_icons(app_of(request), base_url(request))})


@get("/v1/site")
async def site(request: Request) -> Response:
    if not emulator_of(request).profile.site_route:  # added in 1.4.0
        return not_found_page(request)
    return json_response(site_of(app_of(request)))  # 16b


# --- conversations and messages ---------------------------------------------------------------


@get("/v1/conversations")
async def conversations(request: Request) -> Response:
    emulator = emulator_of(request)
    app = app_of(request)
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
    app = app_of(request)
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
    app = app_of(request)
    if app.mode not in CHAT_MODES:
        raise errors.not_chat_app()
    payload: dict[str, Any] = {}
    if "application/json" in (request.headers.get("content-type") or ""):
        payload = await json_body(request)
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
