"""A minimal, fast Dify stand-in for benchmarks and fault tests: raw asyncio HTTP/1.1,
keep-alive, chunked SSE, and bodies no well-behaved server sends.

The emulator (bridge.emulator) is faithful but runs a whole Litestar app per event; here every
microsecond the stand-in spends is one the bridge and the direct reader both pay, so it does as
little as possible. Each Dify event goes out as its own chunked write, the way Dify flushes them.
All apps are chat apps (`/info` says so); the bearer key picks the behaviour:
- `app-flood`: `chunks` one-word `message` events (query `chunks=N`, default 2000), then
  `message_end`.
- `app-silent`: one `message` event, then silence until `POST …/stop` or the client leaves
  (a held stream: a slow flow step).
- `app-gzip-bad-start` / `app-gzip-bad-mid`: `Content-Encoding: gzip` whose bytes are corrupt
  from the first byte / after a few good events.
- `app-nosep`: events separated by a single newline (no blank line), then EOF.
- `app-html`: 200 with an HTML page (a proxy's or a web UI's).
`GET /_standin/stats` reports stops received and streams open.

    python -m tests.support.standin --port 5100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import threading
import uuid
import zlib
from collections.abc import Iterator

from tests.support.raw_http import (
    LAST_CHUNK,
    SSE_HEAD,
    chunk,
    connection,
    json_response,
    read_request,
)

_CHUNKS = re.compile(r"chunks=(\d+)")


class Stats:
    def __init__(self) -> None:
        self.stops = 0
        self.open_streams = 0
        self.streams = 0
        self.held: dict[str, asyncio.Event] = {}


def _event(payload: dict) -> bytes:
    return chunk(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n")


_PING = b"d\r\nevent: ping\n\n\r\n"  # Dify's keepalive, a 13-byte chunk


async def _flood(writer: asyncio.StreamWriter, chunks: int, ids: dict) -> None:
    writer.write(SSE_HEAD)
    writer.write(_PING)
    for i in range(chunks):
        writer.write(_event({"event": "message", **ids, "answer": f"w{i} "}))
        if i % 16 == 0:
            await writer.drain()
    usage = {"prompt_tokens": 1, "completion_tokens": chunks, "total_tokens": chunks + 1}
    writer.write(_event({"event": "message_end", **ids, "metadata": {"usage": usage}}))
    writer.write(LAST_CHUNK)
    await writer.drain()


async def _silent(
    writer: asyncio.StreamWriter, reader: asyncio.StreamReader, ids: dict, stats: Stats
) -> None:
    stop = asyncio.Event()
    stats.held[ids["task_id"]] = stop
    writer.write(SSE_HEAD)
    writer.write(_event({"event": "message", **ids, "answer": "."}))
    await writer.drain()
    gone = asyncio.ensure_future(reader.read(1))  # b"" once the client closes
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({gone, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            writer.write(_event({"event": "message_end", **ids, "metadata": {}}))
            writer.write(LAST_CHUNK)
            await writer.drain()
    finally:
        for task in (gone, stopper):
            task.cancel()
        stats.held.pop(ids["task_id"], None)


def _message(ids: dict, answer: str) -> bytes:
    payload = {"event": "message", **ids, "answer": answer}
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


async def _fault(writer: asyncio.StreamWriter, key: str, ids: dict) -> None:
    if key == "app-html":
        page = b"<!doctype html><html><body><h1>Dify</h1></body></html>"
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(page), page)
        )
        return
    if key == "app-nosep":
        writer.write(SSE_HEAD)
        for word in ("a", "b", "c"):
            writer.write(chunk(_message(ids, word).rstrip(b"\n") + b"\n"))
        writer.write(LAST_CHUNK)
        return
    head = SSE_HEAD.replace(b"transfer-encoding", b"content-encoding: gzip\r\ntransfer-encoding")
    writer.write(head)
    if key == "app-gzip-bad-mid":
        gzip = zlib.compressobj(wbits=31)
        good = b"".join(_message(ids, f"w{i} ") for i in range(5))
        writer.write(chunk(gzip.compress(good) + gzip.flush(zlib.Z_SYNC_FLUSH)))
        await writer.drain()
        await asyncio.sleep(0.2)
    writer.write(chunk(b"\x00this is not deflate data\xff" * 8))
    writer.write(LAST_CHUNK)


_FAULTS = frozenset({"app-html", "app-nosep", "app-gzip-bad-start", "app-gzip-bad-mid"})


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stats: Stats) -> None:
    with connection(writer):
        while request := await read_request(reader):
            method, path, headers, body = request
            key = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if path.startswith("/v1/chat-messages/") and path.endswith("/stop"):
                stats.stops += 1
                task_id = path.split("/")[3]
                if task_id in stats.held:
                    stats.held[task_id].set()
                writer.write(json_response(200, {"result": "success"}))
            elif path == "/v1/chat-messages" and method == "POST":
                payload = json.loads(body or b"{}")
                ids = {
                    "conversation_id": str(uuid.uuid4()),
                    "message_id": str(uuid.uuid4()),
                    "task_id": str(uuid.uuid4()),
                    "created_at": 1795310372,
                }
                stats.open_streams += 1
                stats.streams += 1
                try:
                    if key == "app-silent":
                        await _silent(writer, reader, ids, stats)
                        return
                    if key in _FAULTS:
                        await _fault(writer, key, ids)
                        await writer.drain()
                        return
                    match = _CHUNKS.search(str(payload.get("query", "")))
                    await _flood(writer, int(match.group(1)) if match else 2000, ids)
                finally:
                    stats.open_streams -= 1
            elif path.startswith("/v1/info"):
                writer.write(json_response(200, {"name": "standin", "mode": "chat"}))
            elif path.startswith("/v1/parameters"):
                writer.write(
                    json_response(
                        200,
                        {
                            "user_input_form": [],
                            "file_upload": {"image": {"enabled": False}},
                            "sensitive_word_avoidance": {"enabled": False},
                        },
                    )
                )
            elif path == "/_standin/stats":
                writer.write(
                    json_response(
                        200,
                        {
                            "stops": stats.stops,
                            "open_streams": stats.open_streams,
                            "streams": stats.streams,
                        },
                    )
                )
            else:
                writer.write(json_response(404, {"code": "not_found", "message": path}))
            await writer.drain()


async def serve(host: str, port: int) -> None:
    stats = Stats()
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, stats), host, port, backlog=4096, limit=1 << 20
    )
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def serve_in_thread(port: int = 0) -> Iterator[tuple[str, Stats]]:
    """The stand-in on 127.0.0.1 in a thread of its own: (base URL, its live stats)."""
    stats = Stats()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict = {}

    async def run() -> None:
        server = await asyncio.start_server(
            lambda r, w: handle(r, w, stats), "127.0.0.1", port, backlog=4096, limit=1 << 20
        )
        box["port"] = server.sockets[0].getsockname()[1]
        box["server"] = server
        started.set()
        async with server:
            with contextlib.suppress(asyncio.CancelledError):
                await server.serve_forever()

    thread = threading.Thread(target=lambda: loop.run_until_complete(run()), daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("stand-in did not start")
    try:
        yield f"http://127.0.0.1:{box['port']}", stats
    finally:
        loop.call_soon_threadsafe(box["server"].close)
        for task in asyncio.all_tasks(loop):
            loop.call_soon_threadsafe(task.cancel)
        thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5100)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
