"""What the client actually got when the app's answer never reached it.

Two cases make the app's own status a lie:
- the server's edge (bridge.http.guarded) refused the request while the app was reading its
  body: a 408 for a body that did not arrive in time, a 400 for a malformed chunked body.
  The app then sees a disconnect, Litestar raises "client disconnected prematurely" (a 500),
  and that 500 is dropped on the way out; the client got the edge's 408/400;
- the client itself left before any answer: nobody got anything (nginx's 499).

The edge notes its refusal in the request's ASGI scope, the access middleware notes a
disconnect it passes to the app; the access log, the metrics and the exception handlers read
them here, so a slow or vanishing client can never inflate the 5xx count.
"""

from __future__ import annotations

from typing import Any

import msgspec

# nginx's code for "client closed request": logged and counted, never sent.
CLIENT_CLOSED = 499
_REFUSAL = "bridge.edge_refusal"
_GONE = "bridge.client_gone"


class EdgeRefusal(msgspec.Struct, frozen=True):
    status: int
    code: str
    message: str


def note_refusal(scope: dict[str, Any], refusal: EdgeRefusal) -> None:
    scope[_REFUSAL] = refusal


def refusal_of(scope: Any) -> EdgeRefusal | None:
    return scope.get(_REFUSAL)


def note_client_gone(scope: Any) -> None:
    scope[_GONE] = True


def client_gone(scope: Any) -> bool:
    return bool(scope.get(_GONE))


def answer_unseen(scope: Any, app_status: int) -> tuple[int, str] | None:
    """For a response whose head the app sends now: None when it reaches the client, else
    the status the client really got and the error code to log with it."""
    refusal = refusal_of(scope)
    if refusal is not None:
        return refusal.status, refusal.code
    if app_status == CLIENT_CLOSED or (client_gone(scope) and app_status >= 500):
        return CLIENT_CLOSED, "client_closed_request"
    return None
