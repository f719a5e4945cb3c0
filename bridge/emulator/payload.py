"""The Service API's request checks for the generation endpoints, in Dify's order after auth
and app mode: JSON body → `user` → payload fields (pydantic, or reqparse before 1.11) → pinned
workflow → inputs → files. Each failure is the `DifyError` Dify answers with.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from . import errors
from .dsl import AppSpec
from .store import EmulatorStore


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
