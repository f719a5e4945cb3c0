"""SSE bodies: run a pipeline in its own task and relay its events, with keepalive pings.

The pipeline runs as a separate task so a silent stretch (a long Code node, WAIT15) can be
filled with `event: ping` after `ping_interval` s (24a, 36a), and so a client that goes away
cancels the run instead of crashing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec

from .run import Emit
from .wire import PING_FRAME, sse_frame

_END = object()


async def relay(
    pipeline: Callable[[Emit], Awaitable[None]],
    *,
    ping_interval: float,
    initial_ping: bool,
    on_done: Callable[[], None] | None = None,
    hold_open: Callable[[], float] | None = None,
    encode: Callable[[msgspec.Struct], bytes] = sse_frame,
) -> AsyncIterator[bytes]:
    """`hold_open()` → seconds to keep the finished stream open without pings (44c, and the
    title wait of Dify ≤1.10); `encode` writes one event (dialect.py for older releases)."""
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def produce() -> None:
        try:
            await pipeline(queue.put_nowait)
        finally:
            queue.put_nowait(_END)

    task = asyncio.create_task(produce())
    try:
        if initial_ping:
            yield PING_FRAME
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), ping_interval)
            except TimeoutError:
                yield PING_FRAME
                continue
            if item is _END:
                break
            assert isinstance(item, msgspec.Struct)
            yield encode(item)
        await task
        linger = hold_open() if hold_open is not None else 0.0
        if linger > 0:
            await asyncio.sleep(linger)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if on_done is not None:
            on_done()


async def collect(pipeline: Callable[[Emit], Awaitable[None]]) -> list[msgspec.Struct]:
    """Blocking mode: run to the end, keep the events for the response builder."""
    events: list[msgspec.Struct] = []
    await pipeline(events.append)
    return events


async def ping_then_close() -> AsyncIterator[bytes]:
    """Superseded by ping_then_hang (07b holds the stream open); kept while
    generation_routes.py's switch waits to be committed."""
    yield PING_FRAME


async def ping_then_hang(idle_timeout: float) -> AsyncIterator[bytes]:
    """A streamed chatflow/workflow run that failed before its first event (07b: bad inputs,
    13a: unknown conversation): one ping, then silence until the idle timeout closes it."""
    yield PING_FRAME
    await asyncio.sleep(idle_timeout)
