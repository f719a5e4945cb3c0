"""Raw-socket streaming clients, cheap enough to hold thousands of streams from one process."""

from __future__ import annotations

import asyncio
import json


def chat_request(key: str, query: str, *, stream: bool = True) -> bytes:
    body = json.dumps(
        {"model": "o1", "stream": stream, "messages": [{"role": "user", "content": query}]}
    ).encode()
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: bridge\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer "
        + key.encode()
        + b"\r\ncontent-length: %d\r\n\r\n" % len(body)
        + body
    )


async def hold_streams(
    port: int, count: int, *, key: str = "app-silent", seen_marker: bytes = b'"content":"."'
) -> list[asyncio.StreamWriter]:
    """Open `count` streams on the stand-in's silent app through the bridge at `port` and
    return once each has received its first content (the run has started at Dify)."""

    async def one() -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(chat_request(key, "hold"))
        await writer.drain()
        seen = b""
        while seen_marker not in seen:
            data = await reader.read(4096)
            if not data:
                raise ConnectionError("the bridge closed a held stream")
            seen = seen[-64:] + data
        return writer

    semaphore = asyncio.Semaphore(200)  # connect in waves: the listen backlog is finite

    async def limited() -> asyncio.StreamWriter:
        async with semaphore:
            return await one()

    async with asyncio.timeout(300):
        return await asyncio.gather(*(limited() for _ in range(count)))
