"""Raw asyncio HTTP/1.1 for the Dify stand-ins (standin.py, scripted_dify.py): read one request,
answer in JSON, frame a chunked body. Only what a fast, hand-written server needs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator

HEAD_END = b"\r\n\r\n"
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
LAST_CHUNK = b"0\r\n\r\n"


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict, bytes] | None:
    """(method, path, lower-cased headers, body) of the next request; None once the client left."""
    try:
        head = await reader.readuntil(HEAD_END)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = b""
    if length := int(headers.get("content-length", "0")):
        body = await reader.readexactly(length)
    return method, path, headers, body


def json_response(status: int, body: object) -> bytes:
    raw = json.dumps(body).encode()
    return (
        f"HTTP/1.1 {status} OK\r\ncontent-type: application/json\r\n"
        f"content-length: {len(raw)}\r\n\r\n"
    ).encode() + raw


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


@contextlib.contextmanager
def connection(writer: asyncio.StreamWriter) -> Iterator[None]:
    """Around one connection's request loop: a client that leaves is no error, and the socket
    is closed however the loop ends."""
    try:
        yield
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
