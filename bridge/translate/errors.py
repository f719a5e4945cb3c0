"""Dify HTTP errors → OpenAI-shaped errors with a status the SDKs classify correctly.

Dify's own `message` is kept (it never contains the key; `DifyAPIError` already dropped the
1.8+ "did you mean" 404 hint and gave 1.8-1.10's code-less 400s the code `invalid_param`); the
`code` says which Dify error it was.

| Dify answer (every release)                  | client gets                              |
|----------------------------------------------|------------------------------------------|
| 401 (bad/missing key)                        | 401 `invalid_api_key`                    |
| 403 (app gone, disabled, archived)           | 403 `permission_error`, Dify's code      |
| 404 "Conversation Not Exists."               | 404 `conversation_not_found`             |
| other 404                                    | 404, Dify's code                         |
| 413                                          | 413, Dify's code                         |
| 400 `invalid_param` "Too many requests…" (1) | 429 `rate_limit_exceeded`, Retry-After   |
| 429 `too_many_requests`                      | 429 `rate_limit_exceeded`, Retry-After   |
| other 429 (cloud billing `rate_limit_error`) | 429 `insufficient_quota`, not retryable  |
| 400 wrong-mode codes                         | 400 with a hint about `mode`             |
| other 4xx                                    | 400, Dify's code, not retryable          |
| 503                                          | 503, retryable, Retry-After              |
| other 5xx                                    | 502                                      |

(1) The app's concurrency limit (`max_active_requests`): Dify's handler catches it as a
ValueError, so it is a 400 on every release (dify-versions.md §1.6), but a retry later works.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bridge.dify.client import DifyAPIError, DifyTimeout, DifyUnreachable
from bridge.errors import BridgeError

# Dify's AppInvokeQuotaExceededError text (`libs/external_api.py`: a ValueError, so 400
# invalid_param on every release): "Too many requests. Please try again later."
_CONCURRENCY_LIMIT = "too many requests"
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
    concurrency = exc.status == 400 and exc.message.lower().startswith(_CONCURRENCY_LIMIT)
    if exc.status == 429 or concurrency:
        if code == "too_many_requests" or concurrency:  # the app's concurrency limit: retry
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
