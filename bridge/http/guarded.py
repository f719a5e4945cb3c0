"""The HTTP protocol the bridge's uvicorn speaks, with the edge limits uvicorn lacks.

uvicorn (httptools) never times out a request that is still arriving: a client that sends
half a request head, or a body that never ends, holds its socket for as long as it likes, and
a few thousand such clients exhaust the process's descriptors (slow-loris). It also accepts
headers of any size. `GuardedHttpProtocol` adds, per connection:

- a deadline for the request head (request line + headers), counted from the connection's
  start or the request's first byte, and a deadline for the body, counted from the end of
  the head (`EdgeLimits.request_timeout` each; 408 then close);
- a bound on the head's size (`max_header_bytes`; 431 then close);
- a connection cap (`max_connections`; beyond it a new connection gets 503 and is closed), by
  default derived from the descriptor limit: every stream holds two sockets (the client's and
  its Dify connection), so half of what is left after a reserve;
- OpenAI-shaped JSON instead of uvicorn's plain-text "Invalid HTTP request received." for
  requests the HTTP parser rejects (malformed chunked bodies, Content-Length together with
  Transfer-Encoding, control characters in headers). Those connections are closed: after a
  framing error nothing that follows on the socket can be trusted;
- a lingering close: an answer sent before the request was read to its end (a 413 for a body
  announced too large, any refusal above) is followed by a half-close, and what the client
  still sends is read and dropped until it closes, falls silent for `LINGER_IDLE` s, or
  `request_timeout` has passed. Closing at once would make the kernel answer the unread bytes
  with a reset, and a client still sending its body would see ECONNRESET instead of the answer
  (urllib, and every client that sends `Connection: close`);
- honest accounting: a refusal of a request the app is already serving is noted in its scope
  (bridge.http.refusals), so the access log and the metrics count the 408/400 the client got,
  not the 500 the app's "client disconnected prematurely" would be.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from collections.abc import Callable
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bridge.http.edge_limits import EdgeLimits, connection_cap
from bridge.http.metrics import EDGE_REFUSALS
from bridge.http.refusals import EdgeRefusal, note_refusal


def _error_bytes(status: int, message: str, code: str) -> bytes:
    """A complete HTTP/1.1 response with an OpenAI-shaped error body; the connection closes."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}
    ).encode()
    reason = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large"}
    head = (
        f"HTTP/1.1 {status} {reason.get(status, 'Service Unavailable')}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "x-should-retry: false\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


# Lingering close: seconds of silence from the client after which the socket is closed.
LINGER_IDLE = 2.0


# Refusals at the connection cap are logged at most this often (with a count): a flood of
# connections must not become a flood of log lines too.
REFUSAL_LOG_INTERVAL = 10.0
_refusals = {"since_log": 0, "logged_at": float("-inf")}


def _note_refused_connection(logger: logging.Logger, open_connections: int) -> None:
    _refusals["since_log"] += 1
    now = time.monotonic()
    if now - _refusals["logged_at"] >= REFUSAL_LOG_INTERVAL:
        logger.warning(
            "Connection limit reached (%d open): refused %d connection(s) since the last report.",
            open_connections,
            _refusals["since_log"],
        )
        _refusals["since_log"] = 0
        _refusals["logged_at"] = now


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head/body deadlines, a head size bound and a
    connection cap (module docstring). Limits come from `config.edge_limits`."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        limits: EdgeLimits = getattr(config, "edge_limits", None) or EdgeLimits()
        self._timeout = limits.request_timeout
        self._max_head = limits.max_header_bytes
        self._max_connections = limits.max_connections or connection_cap(
            resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        )
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # waiting for (the rest of) a request head
        self._head_bytes = 0  # bytes read while in the head (may include a following body)
        self._parsed_head = 0  # request line and headers as parsed
        self._refused = False
        self._body_pending = False  # a request body is still arriving
        self._lingering = False
        self._linger_until = 0.0
        self._last_read = 0.0

    # -- connection life

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        over_cap = len(self.connections) >= self._max_connections
        super().connection_made(transport)
        self._raw = transport
        # What uvicorn (and its request cycles) close is this: see _GracefulTransport.
        self.transport = _GracefulTransport(self, transport)  # type: ignore[assignment]
        if over_cap:
            _note_refused_connection(self.logger, len(self.connections) - 1)
            # No lingering here: the cap exists to free descriptors at once.
            message = "The bridge is at its connection limit; retry later."
            self._refuse(503, message, "overloaded", linger=False)
            return
        # A connection that never sends a byte is a stalled head too.
        self._arm(self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._lingering = False
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._last_read = self.loop.time()  # dropped: the answer has been sent
            return
        if self._refused:
            return
        if self._in_head:
            # Counted before parsing: httptools buffers an unfinished header internally, so a
            # head that never ends would otherwise grow without bound.
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and not self._refused and self._head_bytes > self._max_head:
            self._refuse_large_head()

    def send_400_response(self, msg: str) -> None:
        # Called by uvicorn when httptools rejects the bytes (framing errors, bad header
        # characters); a refusal of ours has already answered.
        if self._refused:
            return
        self._refuse(
            400,
            "The HTTP request is malformed (bad framing or header characters); "
            "the connection is closed.",
            "invalid_http_request",
        )

    # -- parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._parsed_head = 0
        # After a keep-alive response uvicorn's own keep-alive timer ran; the new request's
        # head gets the full deadline from its first byte.
        self._arm(self._head_timed_out)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._body_pending = True
        self._arm(self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_pending = False
        self._disarm()
        super().on_message_complete()

    # -- limits

    def _count(self, size: int) -> None:
        # Exact count of the parsed head (data_received's count also holds body bytes that
        # arrived in the same read).
        self._parsed_head += size
        if self._parsed_head > self._max_head:
            self._refuse_large_head()
            # Stops httptools; uvicorn then calls send_400_response, which sees the refusal.
            raise httptools.HttpParserError("request head too large")

    def _refuse_large_head(self) -> None:
        self._refuse(
            431,
            f"The request headers are too large (over {self._max_head} bytes).",
            "request_headers_too_large",
        )

    def _head_timed_out(self) -> None:
        self._deadline = None
        if not self._in_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head arriving while a response (a long stream) is still going out:
            # never cut that response; look again later.
            self._arm(self._head_timed_out)
            return
        self._refuse(
            408,
            f"The request head did not arrive within {self._timeout:g} s.",
            "request_timeout",
        )

    def _body_timed_out(self) -> None:
        self._deadline = None
        if self.cycle is None or self.cycle.response_started or self.cycle.response_complete:
            self.transport.close()  # lingers if the answer went out before the body came
            return
        self._refuse(
            408,
            f"The request body did not arrive within {self._timeout:g} s.",
            "request_timeout",
        )

    def _refuse(self, status: int, message: str, code: str, *, linger: bool = True) -> None:
        self._refused = True
        self._disarm()
        if self._raw.is_closing() or self._lingering:
            return
        if (
            self.cycle is not None
            and self.cycle.response_started
            and not self.cycle.response_complete
        ):
            # Never write into a response already under way (a stream): just cut it.
            self.cycle.disconnected = True
            self._raw.close()
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # The app is waiting for a body that will not come: it sees a disconnect, and
            # anything it sends after our answer is dropped; what it logs and counts is our
            # answer, not its "client disconnected prematurely" (bridge.http.refusals).
            note_refusal(self.cycle.scope, EdgeRefusal(status, code, message))  # type: ignore[arg-type]
            self.cycle.response_complete = True
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self._raw.write(_error_bytes(status, message, code))
        EDGE_REFUSALS.labels(str(status), code).inc()
        if linger:
            self._linger()
        else:
            self._raw.close()

    # -- lingering close (module docstring)

    def close_gracefully(self) -> None:
        """Close the connection; linger first if the request's body is still arriving."""
        if self._raw.is_closing() or self._lingering:
            return  # closing already, or the linger deadline will
        if self._body_pending:
            self._linger()
        else:
            self._raw.close()

    def _linger(self) -> None:
        self._disarm()
        self._lingering = True
        self.flow.resume_reading()  # uvicorn pauses reading while a body waits for the app
        if self._raw.can_write_eof():
            self._raw.write_eof()  # FIN once the answer has gone out
        now = self.loop.time()
        self._linger_until = now + self._timeout
        self._last_read = now
        self._deadline = self.loop.call_later(LINGER_IDLE, self._linger_check)

    def _linger_check(self) -> None:
        self._deadline = None
        now = self.loop.time()
        quiet_until = self._last_read + LINGER_IDLE
        if now >= quiet_until or now >= self._linger_until:
            self._lingering = False
            self._raw.close()
            return
        self._deadline = self.loop.call_later(
            min(quiet_until, self._linger_until) - now, self._linger_check
        )

    def _arm(self, callback: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self._timeout, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


class _GracefulTransport:
    """The connection's transport as uvicorn sees it: `close()` becomes the protocol's
    lingering close when a request body is still arriving (uvicorn closes after an early
    answer to a `Connection: close` request, and on its keep-alive and shutdown paths)."""

    def __init__(self, protocol: GuardedHttpProtocol, transport: asyncio.Transport) -> None:
        self._protocol = protocol
        self._transport = transport

    def close(self) -> None:
        self._protocol.close_gracefully()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
