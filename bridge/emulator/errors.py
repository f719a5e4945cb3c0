"""Dify's error envelope `{"code","message","status"}` and the exact texts the recordings show."""

from __future__ import annotations

from typing import Any

MODE_MISMATCH = "Please check if your app mode matches the right API route."


class DifyError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "status": self.status}


def unauthorized(message: str) -> DifyError:
    return DifyError("unauthorized", message, 401)


def invalid_param(message: str) -> DifyError:
    return DifyError("invalid_param", message, 400)


def not_chat_app() -> DifyError:
    return DifyError("not_chat_app", MODE_MISMATCH)


def not_workflow_app() -> DifyError:
    return DifyError("not_workflow_app", MODE_MISMATCH)


def app_unavailable() -> DifyError:
    return DifyError("app_unavailable", "App unavailable, please check your app configurations.")


# Flask appends its routing hint to 404 messages (13c, 13d, 18b).
_NOT_FOUND_HINTS = {
    "/v1/chat-messages": "/v1/chat-messages or /api/chat-messages or "
    "/v1/chat-messages/<string:task_id>/stop",
    "/v1/messages": "/v1/messages or /v1/chat-messages or /api/messages",
}


def conversation_not_found(route: str) -> DifyError:
    hint = _NOT_FOUND_HINTS.get(route)
    message = "Conversation Not Exists."
    if hint:
        message += f" You have requested this URI [{route}] but did you mean {hint} ?"
    return DifyError("not_found", message, 404)


def _pydantic_repr(payload: dict[str, Any]) -> str:
    text = repr(payload)
    return text if len(text) <= 50 else text[:25] + "..." + text[-24:]


def validation_error(model: str, problems: list[tuple[str, str, str, Any, str]]) -> DifyError:
    """pydantic's ValidationError text, passed through as `invalid_param` (12b, 12e, 13b).

    Each problem: (field, message, error type, input value, docs slug).
    """
    count = len(problems)
    lines = [f"{count} validation error{'s' if count > 1 else ''} for {model}"]
    for field_name, message, kind, value, slug in problems:
        shown = _pydantic_repr(value) if isinstance(value, dict) else repr(value)
        lines.append(field_name)
        lines.append(
            f"  {message} [type={kind}, input_value={shown}, input_type={type(value).__name__}]"
        )
        lines.append(f"    For further information visit https://errors.pydantic.dev/2.12/v/{slug}")
    return invalid_param("\n".join(lines))
