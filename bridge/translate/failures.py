"""How a Dify run that ended badly is reported to the client: deterministic failures are
4xx-class and never retried; a broken stream is a 502."""

from __future__ import annotations

from bridge.dify import events as ev
from bridge.errors import BridgeError


def flow_failure(message: str | None, *, stopped: bool = False) -> BridgeError:
    """A chatflow/workflow that failed: deterministic, so 4xx-class and never retried."""
    if stopped:
        return BridgeError(
            499,
            "The Dify run was stopped before it finished.",
            code="dify_run_stopped",
            type="server_error",
            retryable=False,
        )
    return BridgeError(
        400,
        f"The Dify app failed: {message or 'unknown error'}",
        code="dify_workflow_failed",
        type="invalid_request_error",
        retryable=False,
    )


def workflow_paused() -> BridgeError:
    return BridgeError(
        400,
        "The Dify app paused for human input (a Human Input node); the Service API cannot "
        "answer its form, so the run ends here.",
        code="dify_workflow_paused",
        retryable=False,
    )


def stream_interrupted() -> BridgeError:
    """Dify's stream ended (closed or reset) after the run started, without its end."""
    return BridgeError(
        502,
        "Dify's stream broke off before the answer was complete.",
        code="dify_stream_interrupted",
        type="server_error",
        retryable=False,
    )


def error_event_failure(event: ev.ErrorEvent) -> BridgeError:
    status = event.status or 500
    if 400 <= status < 500:
        return BridgeError(
            400, event.message or "Dify reported an error", code=event.code, retryable=False
        )
    return BridgeError(
        502, event.message or "Dify reported an error", code=event.code, type="server_error"
    )
