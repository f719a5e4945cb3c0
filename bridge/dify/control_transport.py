"""A lean httpx transport for Dify's small control calls (stop, /info, /parameters, /messages).

When a thousand clients leave at once, the bridge makes a thousand stop calls while it closes
a thousand streams, and every millisecond of CPU per call is a second before the last run is
stopped. Through httpcore a stop costs most of a leaver's CPU: its pool re-checks every
connection and queued request on each change, and each call crosses anyio's stream layers.
The calls here are tiny and sequential, so this transport drops to httpx's own lower layer —
h11, the HTTP/1.1 state machine httpcore uses — on plain asyncio streams: a few idle
keep-alive connections per origin, one request at a time on each.

It speaks httpx's transport interface, so the client API, timeouts and the bridge's error
mapping stay as they are; tests that replace the Dify transport replace this one too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import defaultdict

import h11
import httpx

# Idle keep-alive connections kept per Dify origin (busy ones are bounded by the caller's
# control slots); more than this are closed after use.
MAX_IDLE_PER_ORIGIN = 32
READ_SIZE = 65536
MAX_BODY = 16 * 1024 * 1024  # a control answer is a few KiB; anything near this is not Dify


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)

    @property
    def reusable(self) -> bool:
        # The peer closed an idle connection (its keep-alive ran out): data or EOF is waiting.
        return not (self.writer.is_closing() or self.reader.at_eof())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class ControlTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, verify: ssl.SSLContext | bool = True) -> None:
        self._idle: defaultdict[tuple[str, str, int], list[_Connection]] = defaultdict(list)
        if verify is True:
            verify = ssl.create_default_context()
        self._ssl = verify if isinstance(verify, ssl.SSLContext) else _insecure_context()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        origin = (request.url.scheme, request.url.host, request.url.port or _default_port(request))
        body = await request.aread()
        idle = self._idle[origin]
        while idle:
            connection = idle.pop()
            if not connection.reusable:
                connection.close()
                continue
            try:
                return await self._exchange(connection, origin, request, body, timeouts)
            except _StaleConnection:
                continue  # closed by the peer before it read the request: a fresh one
        connection = await self._connect(origin, timeouts.get("connect"))
        try:
            return await self._exchange(connection, origin, request, body, timeouts)
        except _StaleConnection as exc:
            raise httpx.RemoteProtocolError("Dify closed the connection without answering") from exc

    async def _connect(self, origin: tuple[str, str, int], within: float | None) -> _Connection:
        scheme, host, port = origin
        try:
            async with asyncio.timeout(within):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    ssl=self._ssl if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                    limit=READ_SIZE,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        return _Connection(reader, writer)

    async def _exchange(
        self,
        connection: _Connection,
        origin: tuple[str, str, int],
        request: httpx.Request,
        body: bytes,
        timeouts: dict[str, float | None],
    ) -> httpx.Response:
        conn = connection.h11
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"transfer-encoding"]
        if body and not any(k.lower() == b"content-length" for k, _ in headers):
            headers.append((b"content-length", str(len(body)).encode()))
        answered = False
        try:
            out = conn.send(
                h11.Request(method=request.method, target=request.url.raw_path, headers=headers)
            )
            if body:
                out += conn.send(h11.Data(data=body))
            out += conn.send(h11.EndOfMessage())
            async with asyncio.timeout(timeouts.get("write")):
                connection.writer.write(out)
                await connection.writer.drain()
            async with asyncio.timeout(timeouts.get("read")):
                response: h11.Response | None = None
                chunks: list[bytes] = []
                size = 0
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await connection.reader.read(READ_SIZE)
                        if not data and not answered:
                            raise _StaleConnection
                        conn.receive_data(data)
                        answered = True
                        continue
                    if isinstance(event, h11.InformationalResponse):
                        continue
                    if isinstance(event, h11.Response):
                        response = event
                    elif isinstance(event, h11.Data):
                        size += len(event.data)
                        if size > MAX_BODY:
                            raise httpx.RemoteProtocolError("Dify's control answer is too large")
                        chunks.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed):
                        raise httpx.RemoteProtocolError("Dify closed the connection mid-answer")
        except _StaleConnection:
            connection.close()
            raise
        except TimeoutError as exc:
            connection.close()
            kind = (
                httpx.ReadTimeout if answered or conn.our_state is h11.DONE else httpx.WriteTimeout
            )
            raise kind("Dify did not answer a control call in time") from exc
        except h11.RemoteProtocolError as exc:
            connection.close()
            raise httpx.RemoteProtocolError(str(exc)) from exc
        except (ConnectionError, OSError) as exc:
            connection.close()
            if not answered:
                raise _StaleConnection from exc
            raise httpx.ReadError(str(exc)) from exc
        except BaseException:
            connection.close()  # cancelled or failed mid-exchange: the state is unknown
            raise
        self._release(connection, origin)
        assert response is not None
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=b"".join(chunks),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason},
        )

    def _release(self, connection: _Connection, origin: tuple[str, str, int]) -> None:
        conn = connection.h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            idle = self._idle[origin]
            if len(idle) < MAX_IDLE_PER_ORIGIN:
                idle.append(connection)
                return
        connection.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


class _StaleConnection(Exception):
    """The connection died before any byte of an answer: the request was not served."""


def _default_port(request: httpx.Request) -> int:
    return 443 if request.url.scheme == "https" else 80


def _insecure_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
