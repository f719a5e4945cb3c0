"""A Dify stand-in that plays one scripted event sequence per app key, then does what a real
Dify does after its last event: holds the connection open (rec. 44c: 1.13.2 after an input
moderation block; Dify ≤ 1.10 while it generates a title) or closes it (1.13.0's chatflows).

Run as its own process, like a real Dify:

    python -m tests.support.scripted_dify --port 5200

The bearer key names the script (`SCRIPTS`); `/info` reports the script's app mode, so the
bridge (`mode: auto`) picks the endpoint by itself. `GET /_scripted/stats` reports how many
streams are still open and which stop calls arrived: a finished answer must leave no stream
open and no stop call behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import uuid
from typing import Any

from tests.support.raw_http import (
    LAST_CHUNK,
    SSE_HEAD,
    chunk,
    connection,
    json_response,
    read_request,
)

# Bounds the hold, so a stand-in left behind by a failed test still goes away.
HOLD_SECONDS = 120.0

USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def _message(answer: str) -> dict[str, Any]:
    return {"event": "message", "answer": answer}


def _message_end(usage: dict[str, int] | None = USAGE) -> dict[str, Any]:
    return {"event": "message_end", "metadata": {"usage": usage} if usage else {}}


def _workflow_started() -> dict[str, Any]:
    return {"event": "workflow_started", "data": {"id": "run-1", "workflow_id": "wf-1"}}


def _workflow_finished(status: str = "succeeded", outputs: Any = None) -> dict[str, Any]:
    return {
        "event": "workflow_finished",
        "data": {
            "id": "run-1",
            "workflow_id": "wf-1",
            "status": status,
            "outputs": outputs or {},
            "error": "boom" if status == "failed" else None,
            "elapsed_time": 0.1,
            "total_tokens": 12,
            "total_steps": 3,
        },
    }


# key → (app mode, events, what happens after the last event: "hold" or "close")
SCRIPTS: dict[str, tuple[str, list[dict[str, Any]], str]] = {
    "app-chat": ("chat", [_message("Hello "), _message("there"), _message_end()], "hold"),
    "app-agent": (
        "agent-chat",
        [
            {"event": "agent_message", "answer": "Hello "},
            {"event": "agent_message", "answer": "there"},
            _message_end(),
        ],
        "hold",
    ),
    "app-completion": ("completion", [_message("Hello there"), _message_end()], "hold"),
    # Dify ≥ 1.13.1: message_end, then workflow_finished.
    "app-flow-1132": (
        "advanced-chat",
        [_workflow_started(), _message("Hello there"), _message_end(), _workflow_finished()],
        "hold",
    ),
    # Dify ≤ 1.12: workflow_finished first; output moderation's message_replace and the
    # usage-carrying message_end come after it (dify-versions.md §1.5).
    "app-flow-19": (
        "advanced-chat",
        [
            _workflow_started(),
            _message("Echo: boom"),
            _workflow_finished(),
            {
                "event": "message_replace",
                "answer": "Blocked by moderation.",
                "reason": "output_moderation",
            },
            _message_end(),
        ],
        "hold",
    ),
    # Dify 1.13.0: no message_end at all; the server closes after workflow_finished.
    "app-flow-1130": (
        "advanced-chat",
        [_workflow_started(), _message("Hello there"), _workflow_finished()],
        "close",
    ),
    # Rec. 44c: input moderation blocked the query; the preset answer, message_end, silence.
    "app-flow-blocked": (
        "advanced-chat",
        [
            _message("Blocked by moderation."),
            _message_end({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
        ],
        "hold",
    ),
    "app-workflow": (
        "workflow",
        [
            _workflow_started(),
            {
                "event": "text_chunk",
                "data": {"text": "Hello there", "from_variable_selector": ["llm", "text"]},
            },
            _workflow_finished(outputs={"text": "Hello there"}),
        ],
        "hold",
    ),
    # The run starts, then Dify goes silent (a slow node): the bridge's read timeout ends it.
    "app-stall": ("chat", [_message("Hel")], "hold"),
    # The run starts, then an event larger than the bridge accepts (16 MiB).
    "app-oversize": ("chat", [_message("Hel"), "x" * (17 * 1024 * 1024)], "hold"),  # type: ignore[list-item]
    # The run starts, then an event that is not JSON.
    "app-garbage": ("chat", [_message("Hel"), "not json at all"], "hold"),  # type: ignore[list-item]
}
MODERATED = frozenset({"app-flow-19", "app-flow-blocked"})


class Stats:
    def __init__(self) -> None:
        self.open_streams = 0
        self.streams = 0
        self.stops: list[str] = []


def _frame(event: dict[str, Any] | str, ids: dict[str, Any]) -> bytes:
    if isinstance(event, str):
        return chunk(b"data: " + event.encode() + b"\n\n")
    payload = {"event": event["event"], **ids, **{k: v for k, v in event.items() if k != "event"}}
    return chunk(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n")


async def _play(
    writer: asyncio.StreamWriter, reader: asyncio.StreamReader, key: str, stats: Stats
) -> bool:
    """Play the script; True if the connection may serve another request."""
    mode, events, after = SCRIPTS[key]
    ids: dict[str, Any] = {"task_id": str(uuid.uuid4()), "created_at": 1795310372}
    if mode != "workflow":
        ids |= {
            "conversation_id": str(uuid.uuid4()),
            "message_id": str(uuid.uuid4()),
            "id": str(uuid.uuid4()),
        }
    else:
        ids |= {"workflow_run_id": "run-1"}
    writer.write(SSE_HEAD)
    writer.write(chunk(b"event: ping\n\n"))
    for event in events:
        writer.write(_frame(event, ids))
    await writer.drain()
    if after == "close":
        writer.write(LAST_CHUNK)
        await writer.drain()
        return True
    # Hold: nothing more is sent until the client closes the connection (or the bound).
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(HOLD_SECONDS):
            while await reader.read(65536):
                pass
    return False


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stats: Stats) -> None:
    with connection(writer):
        while request := await read_request(reader):
            method, path, headers, _body = request
            key = headers.get("authorization", "").removeprefix("Bearer ").strip()
            script = SCRIPTS.get(key)
            if path.endswith("/stop") and method == "POST":
                stats.stops.append(path.split("/")[-2])
                writer.write(json_response(200, {"result": "success"}))
            elif path == "/_scripted/stats":
                writer.write(
                    json_response(
                        200,
                        {
                            "open_streams": stats.open_streams,
                            "streams": stats.streams,
                            "stops": stats.stops,
                        },
                    )
                )
            elif script is None:
                writer.write(
                    json_response(
                        401,
                        {
                            "code": "unauthorized",
                            "message": "Access token is invalid",
                            "status": 401,
                        },
                    )
                )
            elif path.startswith("/v1/info"):
                writer.write(
                    json_response(
                        200, {"name": key, "description": "", "tags": [], "mode": script[0]}
                    )
                )
            elif path.startswith("/v1/parameters"):
                moderated = key in MODERATED
                writer.write(
                    json_response(
                        200,
                        {
                            "user_input_form": [],
                            "file_upload": {"image": {"enabled": False}},
                            "sensitive_word_avoidance": {"enabled": moderated},
                        },
                    )
                )
            elif method == "POST" and path in (
                "/v1/chat-messages",
                "/v1/completion-messages",
                "/v1/workflows/run",
            ):
                stats.open_streams += 1
                stats.streams += 1
                try:
                    if not await _play(writer, reader, key, stats):
                        return
                finally:
                    stats.open_streams -= 1
            else:
                writer.write(
                    json_response(404, {"code": "not_found", "message": path, "status": 404})
                )
            await writer.drain()


async def serve(host: str, port: int) -> None:
    stats = Stats()
    server = await asyncio.start_server(lambda r, w: handle(r, w, stats), host, port)
    print(f"scripted Dify on http://{host}:{server.sockets[0].getsockname()[1]}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5200)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
