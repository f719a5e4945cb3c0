"""The lean transport for Dify's control calls (bridge.dify.control_transport), against a raw
HTTP/1.1 server on 127.0.0.1 whose behaviour each test picks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from bridge.dify.control_transport import ControlTransport


class RawServer:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.close_after_answer = False
        self.silent = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                if self.silent:
                    await asyncio.sleep(3600)
                answer = b'{"result":"success"}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(answer), answer)
                )
                await writer.drain()
                if self.close_after_answer:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@contextlib.asynccontextmanager
async def raw_server() -> AsyncIterator[tuple[RawServer, str]]:
    state = RawServer()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield state, f"http://127.0.0.1:{port}"


async def test_calls_reuse_one_keep_alive_connection() -> None:
    async with (
        raw_server() as (server, url),
        httpx.AsyncClient(transport=ControlTransport()) as client,
    ):
        for _ in range(5):
            response = await client.post(f"{url}/v1/chat-messages/t1/stop", json={"user": "u"})
            assert response.status_code == 200
            assert response.json() == {"result": "success"}
    assert server.connections == 1
    assert len(server.requests) == 5
    assert b"POST /v1/chat-messages/t1/stop HTTP/1.1" in server.requests[0]
    assert server.requests[0].endswith(b'{"user":"u"}')


async def test_a_connection_the_server_closed_is_replaced_not_failed() -> None:
    async with raw_server() as (server, url):
        server.close_after_answer = True
        async with httpx.AsyncClient(transport=ControlTransport()) as client:
            for _ in range(3):
                await asyncio.sleep(0.05)  # the close reaches the idle connection
                response = await client.get(f"{url}/v1/info")
                assert response.status_code == 200
    assert server.connections == 3


async def test_a_silent_server_is_a_read_timeout() -> None:
    async with raw_server() as (server, url):
        server.silent = True
        async with httpx.AsyncClient(transport=ControlTransport(), timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"{url}/v1/parameters")


async def test_nothing_listening_is_a_connect_error() -> None:
    async with raw_server() as (_server, url):
        pass  # closed again: the port is free
    async with httpx.AsyncClient(transport=ControlTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{url}/v1/info")
