"""Cost of the bridge's translation relative to just parsing Dify's SSE, per recording."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
from httpx_sse import EventSource

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.dify.events import decode_event
from bridge.translate.openai_out import ChunkEncoder
from bridge.translate.stream import StreamTranslator
from tests.support.recordings import load

CASES = [
    ("01", "advanced-chat"),
    ("30a", "chat"),
    ("31e", "agent-chat"),
    ("40", "advanced-chat"),
    ("05", "workflow"),
]
ROUNDS = 300


def response(body: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


async def parse_only(body: bytes) -> int:
    count = 0
    async for _ in EventSource(response(body)).aiter_sse():
        count += 1
    return count


async def full_pipeline(body: bytes, mode: str) -> int:
    translator = StreamTranslator(mode, reasoning=True)
    encoder = ChunkEncoder("o1")
    size = len(encoder.start())
    async for sse in EventSource(response(body)).aiter_sse():
        for item in translator.feed(decode_event(sse.event, sse.data)):
            size += sum(len(frame) for frame in encoder.encode(item))
    return size


async def timed(fn, *args) -> float:
    start = time.perf_counter()
    for _ in range(ROUNDS):
        await fn(*args)
    return time.perf_counter() - start


async def main() -> None:
    print(f"{'recording':<10} {'events':>6} {'pipeline/parse':>15}")
    ratios = []
    for name, mode in CASES:
        body = load(name).body
        events = await parse_only(body)
        await timed(parse_only, body)  # warm-up
        parse = await timed(parse_only, body)
        pipeline = await timed(full_pipeline, body, mode)
        ratios.append(pipeline / parse)
        print(f"{name:<10} {events:>6} {pipeline / parse:>14.2f}x")
    print(f"mean pipeline/parse ratio: {sum(ratios) / len(ratios):.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
