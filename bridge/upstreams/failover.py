"""When another upstream may be tried: only when the run provably did not start on this one.

Everything here is an answer Dify (or the proxy in front of it) gave *before* it accepted the
run — the stream never opened, so no task exists and nothing reached the client. A read
timeout while waiting for the response, anything after a 200, any event: never retried (the
run may be executing; a retry could run it twice and duplicate the answer).
"""

from __future__ import annotations

from bridge.dify.client import DifyAPIError, DifyUnreachable

# Dify's codes for "this app/key cannot run now" (a provider's quota or rate limit, the app
# switched off): another app key, or another instance, can.
_QUOTA_CODES = frozenset({"provider_quota_exceeded", "quota_exceeded", "rate_limit_error"})
_CONCURRENCY_TEXT = "too many requests"


def failover_cause(exc: BaseException) -> str | None:
    """The cause label (bounded, for metrics and logs) if trying elsewhere is safe, else None."""
    if isinstance(exc, DifyUnreachable):
        # Refused, DNS, reset before a response, connect timeout: no request reached Dify.
        return "unreachable"
    if not isinstance(exc, DifyAPIError):
        return None
    code = exc.code or ""
    if exc.status in (502, 503, 504):
        return f"http_{exc.status}"
    if exc.status == 429:
        return "rate_limited"
    if code in _QUOTA_CODES:
        return "quota"
    if code == "app_unavailable":
        return "app_unavailable"
    if exc.status == 400 and exc.message.lower().startswith(_CONCURRENCY_TEXT):
        return "rate_limited"  # the app's max_active_requests: a 400 on every release
    if exc.status == 401:
        return "invalid_key"  # a revoked key of a rotated set: another key may work
    return None
