"""A Dify instance whose app cannot run: it answers `/info`, `/parameters` and the other
reads from a real Dify (an emulator) behind it, and refuses every run the way Dify does when
the app's key is rate limited or its provider quota is spent. Run as its own process:

    python -m tests.support.fault_dify --port 5300 --behind http://127.0.0.1:5001/v1 \
        --fault quota            # 429 | quota | 502 | app_unavailable

`GET /_fault/stats` says how many runs it refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httpx

_HEAD_END = b"\r\n\r\n"
FAULTS = {
    "429": (429, {"code": "too_many_requests", "message": "Too many requests.", "status": 429}),
    "quota": (
        400,
        {
            "code": "provider_quota_exceeded",
            "message": "Your quota for Dify Hosted Model Provider has been exhausted.",
            "status": 400,
        },
    ),
    "502": (502, {"message": "Bad Gateway"}),
    "app_unavailable": (
        400,
        {"code": "app_unavailable", "message": "App unavailable.", "status": 400},
    ),
}
RUN_PATHS = ("/chat-messages", "/completion-messages", "/workflows/run")


def _response(status: int, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    args: argparse.Namespace,
    stats: dict[str, int],
    http: httpx.AsyncClient,
) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(_HEAD_END)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length") or 0))
            path = target.split("?", 1)[0]
            if path == "/_fault/stats":
                writer.write(_response(200, json.dumps(stats).encode()))
            elif method == "POST" and path.endswith(RUN_PATHS):
                stats["refused"] += 1
                status, payload = FAULTS[args.fault]
                writer.write(_response(status, json.dumps(payload).encode()))
            else:
                upstream = await http.request(
                    method,
                    args.behind.removesuffix("/").removesuffix("/v1") + target,
                    headers={"authorization": headers.get("authorization", "")},
                    content=body or None,
                )
                writer.write(_response(upstream.status_code, upstream.content))
            await writer.drain()
    finally:
        writer.close()


async def serve(args: argparse.Namespace) -> None:
    stats = {"refused": 0}
    async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
        server = await asyncio.start_server(
            lambda r, w: handle(r, w, args, stats, http), "127.0.0.1", args.port
        )
        async with server:
            await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--behind", required=True)
    parser.add_argument("--fault", choices=sorted(FAULTS), default="quota")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
