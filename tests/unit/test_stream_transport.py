"""The httptools transport for Dify's event streams (bridge.dify.stream_transport), against
raw HTTP/1.1 servers on 127.0.0.1 that send what a test needs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from bridge.dify.stream_transport import MAX_BUFFERED, StreamTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await handler(reader, writer)
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with srv:
        yield f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}", connections


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
        0,
    )
    return head + await reader.readexactly(length)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def client(read: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=StreamTransport(max_connections=8), timeout=httpx.Timeout(read))


async def test_chunks_arrive_whole_and_in_order_and_the_connection_is_reused() -> None:
    async def handler(reader, writer):
        for _ in range(2):
            request = await read_request(reader)
            assert request.startswith(b"POST /v1/chat-messages HTTP/1.1") and request.endswith(b'{"q":1}')
            writer.write(SSE_HEAD + b"".join(chunk(b"data: %d\n\n" % i) for i in range(1000)) + b"0\r\n\r\n")
            await writer.drain()

    async with server(handler) as (url, connections), client() as http:
        for _ in range(2):
            async with http.stream("POST", f"{url}/v1/chat-messages", json={"q": 1}) as response:
                assert response.status_code == 200
                body = b"".join([piece async for piece in response.aiter_bytes()])
            assert body == b"".join(b"data: %d\n\n" % i for i in range(1000))
    assert len(connections) == 1


async def test_a_body_cut_off_mid_stream_is_an_error_not_an_end() -> None:
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(SSE_HEAD + chunk(b"data: 1\n\n"))
        await writer.drain()

    async with (
        server(handler) as (url, _),
        client() as http,
        http.stream("POST", f"{url}/v1/chat-messages", json={}) as response,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            async for _ in response.aiter_bytes():
                pass


async def test_silence_is_a_read_timeout() -> None:
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(SSE_HEAD + chunk(b"data: 1\n\n"))
        await writer.drain()
        await asyncio.sleep(30)

    async with (
        server(handler) as (url, _),
        client(read=0.3) as http,
        http.stream("POST", f"{url}/v1/chat-messages", json={}) as response,
    ):
        with pytest.raises(httpx.ReadTimeout):
            async for _ in response.aiter_bytes():
                pass


async def test_malformed_http_is_a_protocol_error() -> None:
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with (
        server(handler) as (url, _),
        client() as http,
        http.stream("POST", f"{url}/v1/chat-messages", json={}) as response,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            async for _ in response.aiter_bytes():
                pass


async def test_a_reader_that_does_not_read_pauses_the_socket() -> None:
    sent = asyncio.Event()

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(SSE_HEAD)
        piece = chunk(b"x" * 65536)
        for _ in range(512):  # 32 MiB: past the bridge's buffer and the kernel's socket buffers
            writer.write(piece)
            await writer.drain()
        sent.set()

    async with (
        server(handler) as (url, _),
        client() as http,
        http.stream("POST", f"{url}/v1/chat-messages", json={}) as response,
    ):
        iterator = response.aiter_raw()
        first = await iterator.__anext__()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sent.wait(), 1.0)
        # TCP pushed back: the server could not write everything while nobody read.
        assert not sent.is_set()
        assert len(first) <= MAX_BUFFERED + 65536 + 16


async def test_nothing_listening_is_a_connect_error() -> None:
    async with server(read_request) as (url, _):
        pass
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.post(f"{url}/v1/chat-messages", json={})
