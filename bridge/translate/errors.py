"""Dify HTTP errors → OpenAI-shaped errors with a status the SDKs classify correctly.

Dify's own `message` is kept (it never contains the key); the `code` says which Dify error it
was. Everything Dify refuses deterministically stays 4xx with `x-should-retry: false`; Dify's
503 (overloaded, maintenance) stays a retryable 503, any other 5xx becomes 502.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bridge.dify.client import DifyAPIError, DifyTimeout, DifyUnreachable
from bridge.errors import BridgeError

_WRONG_MODE = {"not_chat_app", "not_workflow_app", "not_completion_app", "app_unavailable"}


def from_dify_error(exc: DifyAPIError, *, managed: bool) -> BridgeError:
    code = exc.code or f"dify_http_{exc.status}"
    message = exc.message
    if exc.status == 401:
        if managed:
            message = (
                "Dify rejected the app key configured for this model "
                f"({exc.message}); check the bridge configuration."
            )
        else:
            message = f"Dify rejected the app key ({exc.message})."
        return BridgeError(401, message, code="invalid_api_key", retryable=False)
    if exc.status == 403:
        return BridgeError(403, message, type="permission_error", code=code, retryable=False)
    if exc.status == 404:
        if message.startswith("Conversation Not Exists"):
            return BridgeError(
                404,
                "Conversation Not Exists.",
                code="conversation_not_found",
                param="conversation_id",
                retryable=False,
            )
        return BridgeError(404, message, code=code, retryable=False)
    if exc.status == 413:
        return BridgeError(413, message, code=code, retryable=False)
    if exc.status == 429:
        if code == "too_many_requests":  # the app's concurrency limit: worth a retry
            return BridgeError(
                429,
                message,
                type="rate_limit_error",
                code="rate_limit_exceeded",
                retryable=True,
                headers={"retry-after": "2"},
            )
        return BridgeError(429, message, type="insufficient_quota", code=code, retryable=False)
    if code in _WRONG_MODE:
        return BridgeError(
            400,
            f"{message} (Dify code {code}: the app's mode does not match the configured "
            "`mode`; use `mode: auto` or the app's real mode)",
            code=code,
            retryable=False,
        )
    if 400 <= exc.status < 500:
        return BridgeError(400, message, code=code, retryable=False)
    if exc.status == 503:
        # Dify (or the proxy in front of it) is overloaded or in maintenance: a retry later
        # may well succeed, and clients back off on 503, so it is passed on as such.
        return BridgeError(
            503,
            f"Dify is unavailable: {message}",
            type="server_error",
            code=code,
            retryable=True,
            headers={"retry-after": "5"},
        )
    return BridgeError(502, f"Dify failed: {message}", type="server_error", code=code)


def from_transport_error(exc: DifyUnreachable | DifyTimeout) -> BridgeError:
    """No answer from Dify: 502 when it cannot be reached, 504 when it stayed silent."""
    if isinstance(exc, DifyTimeout):
        return BridgeError(
            504, "Dify did not answer in time.", code="dify_timeout", type="server_error"
        )
    return BridgeError(502, "Could not reach Dify.", code="dify_unreachable", type="server_error")


@contextlib.contextmanager
def dify_errors(*, managed: bool) -> Iterator[None]:
    """Turn whatever a Dify call raises into the `BridgeError` the client should get."""
    try:
        yield
    except DifyAPIError as exc:
        raise from_dify_error(exc, managed=managed) from None
    except (DifyUnreachable, DifyTimeout) as exc:
        raise from_transport_error(exc) from None
