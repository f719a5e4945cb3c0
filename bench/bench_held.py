"""Held streams: memory per stream in the bridge, and what happens when they all leave at once.

N clients open a stream on the stand-in's silent app (one content chunk, then a silent step)
and hold it; the bridge's resident memory is read before and after (KiB per held stream). Then
every client closes at the same instant: the run measures how long until Dify (the stand-in)
got all N stop calls and had no stream left open, and how long a new request takes meanwhile.
Bridge, stand-in and clients are separate processes.

    .venv/bin/python bench/bench_held.py --streams 1000 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs
from tests.support.stream_clients import hold_streams


async def scenario(bridge: str, dify: str, pid: int, count: int) -> dict[str, float]:
    port = int(bridge.rsplit(":", 1)[1])
    async with httpx.AsyncClient(timeout=30) as client:
        before = procs.rss_kib(pid)
        started = time.perf_counter()
        writers = await hold_streams(port, count)
        opened = time.perf_counter() - started
        await asyncio.sleep(1.0)
        held = procs.rss_kib(pid)
        stops_before = (await client.get(f"{dify}/_standin/stats")).json()["stops"]
        left = time.perf_counter()
        for writer in writers:
            writer.transport.abort()
        body = {"model": "o1", "messages": [{"role": "user", "content": "chunks=5"}]}
        answer = await client.post(
            f"{bridge}/v1/chat/completions",
            json=body,
            headers={"Authorization": "Bearer app-flood"},
        )
        assert answer.status_code == 200, answer.text
        new_request = time.perf_counter() - left
        while True:
            stats = (await client.get(f"{dify}/_standin/stats")).json()
            if stats["stops"] - stops_before >= count and stats["open_streams"] == 0:
                break
            if time.perf_counter() - left > 120:
                raise SystemExit(f"after 120 s: {stats}")
            await asyncio.sleep(0.05)
        all_stopped = time.perf_counter() - left
    return {
        "open_s": opened,
        "kib_per_stream": (held - before) / count,
        "rss_mib": held / 1024,
        "new_request_s": new_request,
        "all_stopped_s": all_stopped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1000, 5000])
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for count in args.streams:
        with procs.standin() as dify, procs.bridge(dify) as (bridge, pid):
            result = asyncio.run(scenario(bridge, dify, pid, count))
        print(json.dumps({"streams": count, **{k: round(v, 2) for k, v in result.items()}}))


if __name__ == "__main__":
    main()
