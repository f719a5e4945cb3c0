"""Dify's error envelope `{"code","message","status"}` and the exact texts the recordings show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .versions import BodyErrorShape, DifyProfile

MODE_MISMATCH = "Please check if your app mode matches the right API route."


class DifyError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        *,
        hint: str = "",
        reqparse: ReqparseError | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        # flask-restx's 404 suffix (" You have requested this URI …"): only from Dify 1.8.0.
        self.hint = hint
        # How the same body-validation failure read before pydantic payloads (Dify ≤1.10).
        self.reqparse = reqparse

    def body(self) -> dict[str, Any]:
        """The body Dify 1.13.2 sends (the recordings)."""
        return {"code": self.code, "message": self.message + self.hint, "status": self.status}

    def body_for(self, profile: DifyProfile) -> dict[str, Any]:
        """The body the emulated release sends (dify-versions.md §1.6)."""
        if self.reqparse is not None:
            shape = profile.body_error_shape
            if shape is BodyErrorShape.REQPARSE:
                # flask-restful's abort(400, message={field: text}), reshaped by Dify's
                # external_api handler; no `status` key.
                return {
                    "code": "invalid_param",
                    "message": self.reqparse.restful_message,
                    "params": self.reqparse.field,
                }
            if shape is BodyErrorShape.RESTX:
                # flask-restx replaces Dify's body with the exception's data: no `code`.
                return {
                    "errors": {self.reqparse.field: self.reqparse.restx_message},
                    "message": "Input payload validation failed",
                }
        message = self.message + (self.hint if profile.not_found_hint else "")
        return {"code": self.code, "message": message, "status": self.status}


@dataclass(frozen=True)
class ReqparseError:
    """The first failing argument as a reqparse parser (Dify ≤1.10) reports it."""

    field: str
    text: str  # reqparse's own text, e.g. "Missing required parameter in the JSON body"
    help: str = ""  # the argument's help text (1.8–1.10 parsers have them)
    restx_text: str = ""  # flask-restx's own wording where it differs from flask-restful's

    @property
    def restful_message(self) -> str:
        # flask-restful formats help with `{error_msg}`; ≤1.7 parsers had no help texts
        return self.text

    @property
    def restx_message(self) -> str:
        text = self.restx_text or self.text
        return f"{self.help} {text}" if self.help else text


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
    suffix = f" You have requested this URI [{route}] but did you mean {hint} ?" if hint else ""
    return DifyError("not_found", "Conversation Not Exists.", 404, hint=suffix)


def _pydantic_repr(payload: dict[str, Any]) -> str:
    text = repr(payload)
    return text if len(text) <= 50 else text[:25] + "..." + text[-24:]


def validation_error(
    model: str,
    problems: list[tuple[str, str, str, Any, str]],
    reqparse: ReqparseError | None = None,
) -> DifyError:
    """pydantic's ValidationError text, passed through as `invalid_param` (12b, 12e, 13b).

    Each problem: (field, message, error type, input value, docs slug). `reqparse`: the same
    failure as the reqparse parsers of Dify ≤1.10 report it.
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
    return DifyError("invalid_param", "\n".join(lines), 400, reqparse=reqparse)
