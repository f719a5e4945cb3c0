"""Time to first content, side by side in one run: a direct Dify reader, the bridge and
(optionally) dify2openai, all against the same fast Dify stand-in.

Each request is a streaming chat whose Dify answer is `--chunks` one-word `message` events;
the clock runs from sending the request to the first content byte the client can show
(direct: the first `message` event line; adapters: the first chunk with `delta.content`).
The rest of the answer is read too, so connections are reused as a real client reuses them.
Two loads: one client sending `--requests` requests one after another, and `--clients`
clients at once sending `--requests` in all. Targets alternate per round.

    .venv/bin/python bench/bench_ttft.py [--dify2openai DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs


async def _first_content(client: httpx.AsyncClient, base: str, direct: bool, chunks: int) -> float:
    query = f"chunks={chunks}"
    if direct:
        url = f"{base}/v1/chat-messages"
        body = {"inputs": {}, "query": query, "response_mode": "streaming", "user": "bench"}
    else:
        url = f"{base}/v1/chat/completions"
        body = {"model": "o1", "stream": True, "messages": [{"role": "user", "content": query}]}
    first: float | None = None
    start = time.perf_counter()
    async with client.stream(
        "POST", url, json=body, headers={"Authorization": "Bearer app-flood"}
    ) as response:
        assert response.status_code == 200, response.status_code
        async for line in response.aiter_lines():
            if first is not None:
                continue
            if direct:
                if '"event":"message"' in line:
                    first = time.perf_counter() - start
            elif line.startswith("data: {") and '"content":"' in line:
                payload = json.loads(line[6:])
                if payload["choices"] and payload["choices"][0]["delta"].get("content"):
                    first = time.perf_counter() - start
    assert first is not None, "no content arrived"
    return first


async def measure(base: str, direct: bool, requests: int, clients: int, chunks: int) -> list[float]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        queue = list(range(requests))
        times: list[float] = []

        async def worker() -> None:
            while queue:
                queue.pop()
                times.append(await _first_content(client, base, direct, chunks))

        await asyncio.gather(*(worker() for _ in range(clients)))
        return times


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dify2openai", type=Path, help="checkout of fatwang2/dify2openai")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        dify = stack.enter_context(procs.standin())
        targets: dict[str, str] = {"direct": dify}
        targets["bridge"] = stack.enter_context(procs.bridge(dify))[0]
        if args.dify2openai:
            targets["dify2openai"] = stack.enter_context(procs.dify2openai(dify, args.dify2openai))[
                0
            ]
        one: dict[str, list[float]] = {name: [] for name in targets}
        many: dict[str, list[float]] = {name: [] for name in targets}
        for name, base in targets.items():  # warm-up
            asyncio.run(measure(base, name == "direct", 20, 4, args.chunks))
        for _ in range(args.rounds):
            for name, base in targets.items():
                direct = name == "direct"
                one[name] += asyncio.run(measure(base, direct, args.requests, 1, args.chunks))
                many[name] += asyncio.run(
                    measure(base, direct, args.requests, args.clients, args.chunks)
                )

    print(
        f"time to first content: {args.requests} requests x {args.rounds} rounds, "
        f"answers of {args.chunks} events; 1 client, then {args.clients} at once"
    )
    print(
        f"{'target':<14}{'1: p50 ms':>11}{'overhead':>10}{'1: p95':>9}"
        f"{'50: p50':>9}{'50: p95':>9}{'p95 vs direct':>15}"
    )
    base_one = _pct(one["direct"], 0.5)
    base_many = _pct(many["direct"], 0.95)
    for name in targets:
        p50 = _pct(one[name], 0.5)
        print(
            f"{name:<14}{p50:>11.2f}{p50 - base_one:>+10.2f}{_pct(one[name], 0.95):>9.2f}"
            f"{_pct(many[name], 0.5):>9.2f}{_pct(many[name], 0.95):>9.2f}"
            f"{_pct(many[name], 0.95) / base_many:>14.2f}x"
        )


if __name__ == "__main__":
    main()
