"""Request checks and run set-up for the generation endpoints, in Dify's order:
auth → app mode → JSON body → `user` → payload fields → conversation → inputs → files."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .chat import run_chat_app
from .dsl import CHAT_MODES, AppSpec
from .graph import run_graph
from .moderation import answer_blocked_input, moderation_of
from .run import Emit, RunContext, RunSettings
from .store import Conversation, EmulatorStore, Message, new_id, now
from .tool_files import files_in, message_file, strip_images
from .versions import DifyProfile


@dataclass
class Emulator:
    apps: dict[str, AppSpec]
    store: EmulatorStore
    settings: RunSettings
    ping_interval: float = 10.0
    idle_timeout: float = 300.0
    start_failure_hold: float = 300.0
    title_wait: float = 3.0  # ≤1.10: a new conversation's stream waits for its title
    end_users: dict[tuple[str, str], str] = field(default_factory=dict)
    # app key → workflow runs so far (`sequence_number` of ≤1.4.1 graph events)
    run_counts: dict[str, int] = field(default_factory=dict)

    @property
    def profile(self) -> DifyProfile:
        return self.settings.profile

    def next_run_number(self, app: AppSpec) -> int:
        self.run_counts[app.key] = self.run_counts.get(app.key, 0) + 1
        return self.run_counts[app.key]

    def authenticate(self, authorization: str | None) -> AppSpec:
        """The three 401 texts of recordings 10, 11a, 11b."""
        if not authorization or " " not in authorization:
            raise errors.unauthorized(
                "Authorization header must be provided and start with 'Bearer'"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise errors.unauthorized("Authorization scheme must be 'Bearer'")
        app = self.apps.get(token.strip())
        if app is None:
            raise errors.unauthorized("Access token is invalid")
        return app

    def end_user_id(self, app: AppSpec, user: str) -> str:
        return self.end_users.setdefault((app.key, user), new_id())


def parse_json_body(content_type: str | None, body: bytes) -> dict[str, Any]:
    if "application/json" not in (content_type or ""):
        raise errors.DifyError(
            "unsupported_media_type",
            "Did not attempt to load JSON data because the request Content-Type was not "
            "'application/json'.",
            415,
        )
    try:
        payload = json.loads(body or b"")
    except ValueError:
        raise errors.DifyError(
            "bad_request",
            "The browser (or proxy) sent a request that this server could not understand.",
        ) from None
    if not isinstance(payload, dict):
        raise errors.DifyError(
            "bad_request", "Invalid JSON payload received or JSON payload is empty."
        )
    return payload


def require_user(payload: dict[str, Any]) -> str:
    user = payload.get("user")
    if not user or not isinstance(user, str):
        raise errors.invalid_param("Arg user must be provided.")
    return user


@dataclass
class GenerationRequest:
    query: str
    inputs: dict[str, Any]
    streaming: bool
    conversation_id: str
    files: list[dict[str, Any]]
    workflow_id: str = ""  # version pinning (Dify ≥1.7.2)
    auto_generate_name: bool = True


# Help texts of the reqparse arguments in Dify 1.8–1.10 (completion.py@0c6cae2d5:40-67; the
# workflow parser has none). flask-restx prefixes them to the error text.
_REQPARSE_HELP = {
    "ChatRequestPayload": {
        "inputs": "Input parameters for chat",
        "query": "The chat query",
        "response_mode": "Response mode",
        "conversation_id": "Existing conversation ID",
    },
    "CompletionRequestPayload": {
        "inputs": "Input parameters for completion",
        "query": "The query string",
        "response_mode": "Response mode",
    },
}
_MISSING_IN_BODY = "Missing required parameter in the JSON body"


def _reqparse_failure(
    payload: dict[str, Any], model: str, needs_query: bool
) -> errors.ReqparseError | None:
    """The first argument a Dify ≤1.10 reqparse parser refuses, in its argument order
    (inputs, query, files, response_mode, conversation_id); it stops at the first."""
    helps = _REQPARSE_HELP.get(model, {})
    if "inputs" not in payload:
        return errors.ReqparseError("inputs", _MISSING_IN_BODY, helps.get("inputs", ""))
    if needs_query and "query" not in payload:
        return errors.ReqparseError("query", _MISSING_IN_BODY, helps.get("query", ""))
    mode = payload.get("response_mode")
    if mode is not None and mode not in ("blocking", "streaming"):
        return errors.ReqparseError(
            "response_mode",
            f"{mode} is not a valid choice",
            helps.get("response_mode", ""),
            restx_text=f"The value '{mode}' is not a valid choice for 'response_mode'.",
        )
    conversation_id = payload.get("conversation_id") or ""
    if conversation_id and model == "ChatRequestPayload":
        try:
            uuid.UUID(str(conversation_id))
        except ValueError:
            # libs/helper.py uuid_value
            return errors.ReqparseError(
                "conversation_id",
                f"{conversation_id} is not a valid uuid.",
                helps.get("conversation_id", ""),
            )
    return None


def parse_generation(payload: dict[str, Any], model: str, needs_query: bool) -> GenerationRequest:
    """The pydantic checks of ChatRequestPayload / WorkflowRunPayload / CompletionRequestPayload."""
    problems: list[tuple[str, str, str, Any, str]] = []
    if needs_query and "query" not in payload:
        problems.append(("query", "Field required", "missing", payload, "missing"))
    if "inputs" not in payload:
        problems.append(("inputs", "Field required", "missing", payload, "missing"))
    mode = payload.get("response_mode")
    if mode is not None and mode not in ("blocking", "streaming"):
        problems.append(
            (
                "response_mode",
                "Input should be 'blocking' or 'streaming'",
                "literal_error",
                mode,
                "literal_error",
            )
        )
    conversation_id = payload.get("conversation_id") or ""
    if conversation_id:
        try:
            uuid.UUID(str(conversation_id))
        except ValueError:
            problems.append(
                (
                    "conversation_id",
                    "Value error, conversation_id must be a valid UUID",
                    "value_error",
                    conversation_id,
                    "value_error",
                )
            )
    if problems:
        raise errors.validation_error(
            model, problems, _reqparse_failure(payload, model, needs_query)
        )
    inputs = payload.get("inputs")
    return GenerationRequest(
        query=str(payload.get("query") or ""),
        inputs=dict(inputs) if isinstance(inputs, dict) else {},
        streaming=mode == "streaming",  # omitted → blocking (12f)
        conversation_id=str(conversation_id),
        files=list(payload.get("files") or []),
        workflow_id=str(payload.get("workflow_id") or ""),
        auto_generate_name=bool(payload.get("auto_generate_name", True)),
    )


def check_pinned_workflow(app: AppSpec, workflow_id: str) -> None:
    """`AppGenerateService._get_workflow` with a `workflow_id` (Dify ≥1.7.2, 20f0238aa): a
    non-UUID is 400 `bad_request`, an unknown id 404; only the DSL's own workflow exists here."""
    if not workflow_id:
        return
    try:
        uuid.UUID(workflow_id)
    except ValueError:
        raise errors.DifyError(
            "bad_request", f"Invalid workflow_id format: '{workflow_id}'. "
        ) from None
    if workflow_id != app.workflow_id:
        raise errors.DifyError("not_found", f"Workflow not found with id: {workflow_id}", 404)


def validate_inputs(app: AppSpec, inputs: dict[str, Any]) -> dict[str, Any]:
    """Dify's `_prepare_user_inputs`, checked on every turn, also inside a conversation (22c-22e).

    Only declared variables survive, each in form order; one not sent is None (stored as `null`,
    issue 14 item 9). Only a missing (None) value counts as missing: a real Dify runs a flow
    with `""` for a required text input (issue 10 item 7).
    """
    cleaned: dict[str, Any] = {}
    for item in app.user_input_form:
        ((kind, spec),) = item.items()
        name = str(spec.get("variable"))
        cleaned[name] = _checked_input(kind, name, spec, inputs.get(name))
    return cleaned


def _checked_input(kind: str, name: str, spec: dict[str, Any], value: Any) -> Any:
    if value is None:
        if spec.get("required"):
            raise errors.invalid_param(f"{name} is required in input form")
        value = spec.get("default")
        if value in (None, ""):
            return None
    if kind in ("text-input", "paragraph", "select") and not isinstance(value, str):
        raise errors.invalid_param(f"(type '{kind}') {name} in input form must be a string")
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise errors.invalid_param(f"{name} in input form must be a valid number")
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            raise errors.invalid_param(f"{name} in input form must be a valid number") from None
    if kind == "select" and value not in (spec.get("options") or []):
        raise errors.invalid_param(
            f"{name} in input form must be one of the following: {spec.get('options')}"
        )
    max_length = spec.get("max_length")
    if kind in ("text-input", "paragraph") and max_length and len(value) > int(max_length):
        raise errors.invalid_param(
            f"{name} in input form must be less than {max_length} characters"
        )
    return value.replace("\x00", "") if isinstance(value, str) else value


def resolve_files(
    app: AppSpec, store: EmulatorStore, files: list[dict[str, Any]], base_url: str
) -> list[dict[str, Any]]:
    """`files` reach `sys.files` only when the app allows uploads (20a vs 20c)."""
    if not app.file_upload_enabled:
        return []
    resolved = []
    for item in files:
        method = item.get("transfer_method")
        if method == "local_file":
            upload = store.files.get(str(item.get("upload_file_id") or ""))
            if upload is None:
                raise errors.invalid_param("Invalid upload file")
            url = f"{base_url}/files/{upload.id}/file-preview"
            resolved.append(
                _file_entry(
                    item,
                    "local_file",
                    url,
                    upload.id,
                    upload.name,
                    upload.mime_type,
                    upload.size,
                    url,
                )
            )
        elif method == "remote_url":
            url = str(item.get("url") or "")
            name = url.rsplit("/", 1)[-1] or "file"
            resolved.append(_file_entry(item, "remote_url", url, None, name, None, 0, url))
        else:
            raise errors.invalid_param("Invalid upload file")
    return resolved


def _file_entry(item, method, remote_url, related_id, filename, mime, size, url) -> dict:
    ext = "." + filename.rsplit(".", 1)[-1] if "." in filename else ""
    return {
        "dify_model_identity": "__dify__file__",
        "id": None,
        "tenant_id": "00000000-0000-0000-0000-000000000000",
        "type": item.get("type") or "image",
        "transfer_method": method,
        "remote_url": remote_url,
        "related_id": related_id,
        "filename": filename,
        "extension": ext,
        "mime_type": mime or ("image/png" if ext.lower() == ".png" else "application/octet-stream"),
        "size": size,
        "url": url,
    }


def new_context(
    emulator: Emulator,
    app: AppSpec,
    user: str,
    request: GenerationRequest,
    conversation: Conversation | None,
    files: list[dict[str, Any]],
) -> RunContext:
    task_id = new_id()
    ctx = RunContext(
        app=app,
        store=emulator.store,
        settings=emulator.settings,
        user=user,
        end_user_id=emulator.end_user_id(app, user),
        task_id=task_id,
        message_id=new_id(),
        created_at=now(),
        inputs=request.inputs,
        query=request.query,
        files=files,
        conversation=conversation,
    )
    ctx.stop = emulator.store.register_task(task_id)
    if conversation is not None and not conversation.messages:
        # stored as Dify stores them: the validated form, unsent optional inputs as null
        conversation.inputs = dict(request.inputs)
    return ctx


def conversation_name(query: str, streaming: bool) -> str:
    """Blocking first turns: the query's first 20 characters + "…" (measured, issue 14 item 9).
    Streamed ones get an LLM-written title on Dify; the emulator uses the query on one line,
    cut like Dify cuts a generated title (75 + "...") — see docs/emulator.md."""
    one_line = query.replace("\r", " ").replace("\n", " ")
    if not streaming:
        return one_line[:20] + "…" if len(one_line) > 20 else one_line
    return one_line[:75] + "..." if len(one_line) > 75 else one_line


def open_conversation(
    emulator: Emulator, app: AppSpec, user: str, request: GenerationRequest
) -> Conversation | None:
    if app.mode not in CHAT_MODES:
        return None
    if request.conversation_id:
        return emulator.store.find_conversation(app.key, user, request.conversation_id)
    conv = Conversation(
        id=new_id(),
        app_key=app.key,
        user=user,
        inputs=request.inputs,
        name=conversation_name(request.query, request.streaming),
    )
    emulator.store.conversations[conv.id] = conv
    return conv


async def run_pipeline(ctx: RunContext, emit: Emit) -> None:
    try:
        moderation = moderation_of(ctx.app)
        blocked = moderation.blocks_input(ctx.query, ctx.inputs) if moderation else None
        if blocked is not None:
            answer_blocked_input(ctx, emit, blocked)
        elif ctx.app.is_graph:
            await run_graph(ctx, emit)
        else:
            await run_chat_app(ctx, emit)
    finally:
        _remember(ctx)
        ctx.store.finish_task(ctx.task_id)


def _remember(ctx: RunContext) -> None:
    conv = ctx.conversation
    if conv is None:
        return
    failed = ctx.status in ("failed", "error")
    answer, message_files = ctx.answer, []
    if ctx.app.is_graph:
        # 46c: a chatflow message is saved without its markdown images; the files it showed
        # are listed instead. 27a/34e: a failed run saves no answer and "Run failed: …".
        answer = "" if failed else strip_images(answer)
        message_files = [message_file(f) for f in files_in(ctx.outputs)]
    elif ctx.app.mode == "agent-chat":
        message_files = list(ctx.outputs.get("message_files") or [])  # 46e
    error = None
    if failed:
        error = f"Run failed: {ctx.error}" if ctx.app.is_graph else ctx.error
    message = Message(
        id=ctx.message_id,
        conversation_id=conv.id,
        inputs=ctx.inputs,
        query=ctx.query,
        answer=answer,
        created_at=ctx.created_at,
        agent_thoughts=list(ctx.outputs.get("agent_thoughts") or [])
        if ctx.app.mode == "agent-chat"
        else [],
        message_files=message_files,
        status="error" if failed else "normal",
        error=error,
    )
    conv.messages.append(message)
    conv.updated_at = now()
