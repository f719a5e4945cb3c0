"""Streaming throughput, side by side in one run: a direct Dify reader vs the bridge (and,
optionally, an older bridge revision and dify2openai), all against the same fast Dify stand-in.

Workload (bench/README.md): `--requests` streaming chats, `--concurrency` at a time, each a
Dify answer of `--chunks` one-word `message` events; every client reads every content
character and the run fails if one is missing or out of order. Rounds alternate the targets
so that noise on this shared machine hits them alike; ratios are medians over rounds.

    .venv/bin/python bench/bench_stream.py [--baseline REV] [--dify2openai DIR] [--granian]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs

BENCH_KEY = "bench-bridge-key"


def group_config(dify: str, upstreams: int) -> str:
    """A YAML config serving o1 from `upstreams` upstreams, all the same stand-in app (the
    base URLs differ only in trailing slashes, so each is its own upstream while the work
    behind them is identical: the comparison measures the bridge, not more Dify capacity)."""
    path = Path(tempfile.mkdtemp(prefix="bench-upstreams-")) / "bridge.yaml"
    if upstreams == 1:
        model = {"id": "o1", "app_key": "app-flood", "dify_url": f"{dify}/v1"}
    else:
        urls = [f"{dify}/v1" + "/" * i for i in range(upstreams)]
        model = {"id": "o1", "upstreams": [{"dify_url": u, "app_key": "app-flood"} for u in urls]}
    path.write_text(json.dumps({"models": [model], "api_keys": [BENCH_KEY]}))
    return str(path)


def expected_answer(chunks: int) -> str:
    return "".join(f"w{i} " for i in range(chunks))


async def _read_one(
    client: httpx.AsyncClient, url: str, body: dict, headers: dict, direct: bool
) -> str:
    parts: list[str] = []
    messages = 0
    async with client.stream("POST", url, json=body, headers=headers) as response:
        assert response.status_code == 200, response.status_code
        async for line in response.aiter_lines():
            if direct:
                # The floor any adapter must beat: read Dify's lines and count its `message`
                # events by substring, no JSON decoding (issue 22's method).
                if '"event":"message"' in line:
                    messages += 1
                continue
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            payload = json.loads(data)
            if payload.get("choices"):
                parts.append(payload["choices"][0]["delta"].get("content") or "")
    return str(messages) if direct else "".join(parts)


async def run_round(target: str, base: str, args: argparse.Namespace) -> float:
    """Seconds for the whole workload against one target."""
    direct = target == "direct"
    query = f"chunks={args.chunks}"
    if direct:
        url = f"{base}/v1/chat-messages"
        body = {"inputs": {}, "query": query, "response_mode": "streaming", "user": "bench"}
    else:
        url = f"{base}/v1/chat/completions"
        body = {"model": "o1", "stream": True, "messages": [{"role": "user", "content": query}]}
    # The upstream-group targets serve o1 as a managed model: a bridge key, not the app key.
    key = BENCH_KEY if target.endswith("up") else "app-flood"
    headers = {"Authorization": f"Bearer {key}"}
    want = expected_answer(args.chunks)
    semaphore = asyncio.Semaphore(args.concurrency)
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one() -> None:
            async with semaphore:
                got = await _read_one(client, url, body, headers, direct)
            if got != (str(args.chunks) if direct else want):
                raise SystemExit(f"{target}: content differs ({len(got)} vs {len(want)} chars)")

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(args.requests)))
        return time.perf_counter() - start


@contextlib.contextmanager
def baseline_checkout(rev: str):
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        path = Path(tmp) / "src"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), rev],
            cwd=procs.ROOT,
            check=True,
            capture_output=True,
        )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(path)],
                cwd=procs.ROOT,
                capture_output=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", help="git revision of the bridge to compare with")
    parser.add_argument(
        "--dify2openai",
        type=Path,
        help="checkout of fatwang2/dify2openai with node_modules installed",
    )
    parser.add_argument("--granian", action="store_true", help="also the bridge under granian")
    parser.add_argument(
        "--workers", type=int, default=0, help="also `dify-bridge serve --workers N`"
    )
    parser.add_argument(
        "--upstreams",
        type=int,
        default=0,
        help="also o1 as a managed model of 1 and of N upstreams (docs/upstreams.md)",
    )
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        dify = stack.enter_context(procs.standin())
        targets: dict[str, tuple[str, int | None]] = {"direct": (dify, None)}
        targets["bridge"] = stack.enter_context(procs.bridge(dify))
        if args.workers > 1:
            targets[f"bridge-{args.workers}w"] = stack.enter_context(
                procs.bridge(dify, workers=args.workers)
            )
        if args.upstreams > 1:
            for count in (1, args.upstreams):
                config = {"BRIDGE_CONFIG": group_config(dify, count)}
                targets[f"bridge-{count}up"] = stack.enter_context(procs.bridge(dify, env=config))
        if args.granian:
            targets["bridge-granian"] = stack.enter_context(procs.bridge(dify, server="granian"))
        if args.baseline:
            source = stack.enter_context(baseline_checkout(args.baseline))
            targets[f"bridge@{args.baseline}"] = stack.enter_context(
                procs.bridge(dify, source=source)
            )
        if args.dify2openai:
            targets["dify2openai"] = stack.enter_context(procs.dify2openai(dify, args.dify2openai))

        seconds: dict[str, list[float]] = {name: [] for name in targets}
        cpu: dict[str, list[float]] = {name: [] for name in targets}
        events = args.requests * (args.chunks + 2)  # + ping and message_end
        for name, (base, _) in targets.items():  # warm-up
            asyncio.run(run_round(name, base, argparse.Namespace(**{**vars(args), "requests": 4})))
        for _ in range(args.rounds):
            for name, (base, pid) in targets.items():
                before = procs.cpu_seconds(pid) if pid else 0.0
                seconds[name].append(asyncio.run(run_round(name, base, args)))
                if pid:
                    cpu[name].append((procs.cpu_seconds(pid) - before) / events * 1e6)

    direct = seconds["direct"]
    print(
        f"workload: {args.requests} streams x {args.chunks} message events, "
        f"{args.concurrency} at a time, {args.rounds} rounds "
        "(every character checked; direct counts events)"
    )
    print(f"{'target':<24}{'throughput vs direct':>22}{'median s':>10}{'CPU us/event':>14}")
    for name in targets:
        ratios = [d / s for d, s in zip(direct, seconds[name], strict=True)]
        us = f"{statistics.median(cpu[name]):.1f}" if cpu[name] else "-"
        print(
            f"{name:<24}{statistics.median(ratios):>21.2f}x"
            f"{statistics.median(seconds[name]):>10.2f}{us:>14}"
        )
    if args.upstreams > 1:
        one, many = seconds["bridge-1up"], seconds[f"bridge-{args.upstreams}up"]
        ratios = [a / b for a, b in zip(one, many, strict=True)]
        print(
            f"{args.upstreams} upstreams vs 1 upstream (same model, managed): "
            f"{statistics.median(ratios):.2f}x throughput (median of rounds)"
        )


if __name__ == "__main__":
    main()
