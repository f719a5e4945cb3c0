"""An httpx transport for Dify's event streams, on an asyncio protocol with httptools.

Dify flushes every event as its own HTTP chunk. Through httpcore each chunk costs a trip
through h11's Python state machine, anyio's stream layer and httpx's iterators before the
bridge sees it: most of the bridge's CPU per event (bench/RESULTS.md). Here the socket feeds
httptools' C parser directly (`data_received`); it decodes the chunked framing and hands each
chunk to `on_body`, which only appends it. The response body then yields everything that
arrived since the consumer last asked, one piece per wake-up, whatever the number of chunks.

It is an httpx transport, so the client API, timeouts, Content-Encoding decoding and the
bridge's error mapping stay httpx's. Finished responses leave their connection idle for the
next stream to the same origin; anything else closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import defaultdict

import httptools
import httpx

# Body bytes buffered for a consumer that is not reading (a slow client): past this the
# socket is paused, so TCP pushes back on Dify instead of the bridge's memory growing.
MAX_BUFFERED = 1024 * 1024
MAX_IDLE_PER_ORIGIN = 64

Origin = tuple[str, str, int]


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; one response at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self._waiter: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        self.error: Exception | None = None
        self.body: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.received = False

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.error = httpx.RemoteProtocolError("Dify tried to upgrade the connection")
        except httptools.HttpParserError as exc:
            self.error = httpx.RemoteProtocolError(f"Dify sent malformed HTTP: {exc}")
        if self.buffered > MAX_BUFFERED and not self.paused and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake()

    # -- httptools callbacks ----------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        # Read here: after the message completes, httptools no longer says.
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True

    # -- used by the transport and the body stream ------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, seconds: float | None) -> None:
        """Until something happens on the connection, at most `seconds` (TimeoutError)."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(seconds):
                await self._waiter
        finally:
            self._waiter = None

    def take(self) -> bytes:
        data = b"".join(self.body) if len(self.body) != 1 else self.body[0]
        self.body.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.transport.resume_reading()
            self.paused = False
        return data

    @property
    def reusable(self) -> bool:
        return (
            self.complete
            and not self.lost
            and self.error is None
            and self.keep_alive
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Body(httpx.AsyncByteStream):
    def __init__(
        self,
        transport: StreamTransport,
        connection: _Connection,
        origin: Origin,
        read: float | None,
    ) -> None:
        self._transport = transport
        self._connection = connection
        self._origin = origin
        self._read = read
        self._closed = False

    async def __aiter__(self):  # type: ignore[override]
        connection = self._connection
        while True:
            if connection.body:
                yield connection.take()
                continue
            if connection.error is not None:
                raise connection.error
            if connection.complete:
                return
            if connection.lost:
                raise httpx.RemoteProtocolError(
                    "Dify closed the connection before the end of the body"
                )
            try:
                await connection.wait(self._read)
            except TimeoutError:
                raise httpx.ReadTimeout("Dify sent nothing within the read timeout") from None

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._transport.release(self._connection, self._origin)


class StreamTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self._idle: defaultdict[Origin, list[_Connection]] = defaultdict(list)
        self._slots = asyncio.Semaphore(max_connections)
        self._ssl = ssl_context or ssl.create_default_context()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        origin: Origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection towards Dify") from None
        connection: _Connection | None = None
        try:
            connection = await self._connection(origin, timeouts.get("connect"))
            self._send(connection, request, await request.aread())
            while not connection.headers_done:
                if connection.error is not None:
                    raise connection.error
                if connection.lost:
                    raise httpx.RemoteProtocolError("Dify closed the connection without answering")
                try:
                    await connection.wait(timeouts.get("read"))
                except TimeoutError:
                    raise httpx.ReadTimeout("Dify did not answer within the read timeout") from None
        except BaseException:
            if connection is not None:
                connection.close()
            self._slots.release()
            raise
        return httpx.Response(
            connection.status,
            headers=connection.headers,
            stream=_Body(self, connection, origin, timeouts.get("read")),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def _connection(self, origin: Origin, connect: float | None) -> _Connection:
        # A request is never sent twice, even on a connection that died under it: it may
        # have started a Dify run. Idle connections the peer closed are skipped here.
        idle = self._idle[origin]
        while idle:
            connection = idle.pop()
            if (
                connection.transport is not None
                and not connection.transport.is_closing()
                and not connection.lost
            ):
                connection._reset()
                return connection
            connection.close()
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect):
                _, connection = await loop.create_connection(
                    _Connection,
                    host,
                    port,
                    ssl=self._ssl if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        return connection

    def _send(self, connection: _Connection, request: httpx.Request, body: bytes) -> None:
        lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), request.url.raw_path)]
        for name, value in request.headers.raw:
            if name.lower() not in (b"content-length", b"transfer-encoding"):
                lines.append(b"%s: %s\r\n" % (name, value))
        lines.append(b"content-length: %d\r\n\r\n" % len(body))
        assert connection.transport is not None
        connection.transport.write(b"".join(lines) + body)

    def release(self, connection: _Connection, origin: Origin) -> None:
        self._slots.release()
        idle = self._idle[origin]
        if connection.reusable and len(idle) < MAX_IDLE_PER_ORIGIN:
            idle.append(connection)
        else:
            connection.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                with contextlib.suppress(Exception):
                    connection.close()
        self._idle.clear()
