"""Bridge overhead end to end: the same chat through the bridge vs straight to the Dify
emulator, both over loopback HTTP, measured in one run. The default app (LLMChat, the
emulator's fake model) runs no Code node, so the emulator's own cost stays small and the
ratio shows the bridge's."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge import create_app, load_settings
from bridge.emulator import EmulatorConfig, create_emulator_app
from tests.support.servers import serve_in_thread

DSL = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "dsl"


async def run(
    url: str, body: dict, headers: dict, requests: int, concurrency: int
) -> tuple[float, float]:
    latencies: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60) as client:

        async def one() -> None:
            async with semaphore:
                start = time.perf_counter()
                async with client.stream("POST", url, json=body, headers=headers) as response:
                    async for _ in response.aiter_bytes():
                        pass
                    assert response.status_code == 200
                latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(one() for _ in range(5)))  # warm-up
        latencies.clear()
        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        elapsed = time.perf_counter() - start
    return statistics.median(latencies), requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--key", default="app-llmchat", help="emulator app key (app-cat-llm…)")
    args = parser.parse_args()
    with serve_in_thread(create_emulator_app(EmulatorConfig(dsl_dir=DSL))) as emu:
        settings = load_settings(
            env={"DIFY_API_URL": f"{emu}/v1", "BRIDGE_STORE": "memory://", "LOG_LEVEL": "warning"}
        )
        with serve_in_thread(create_app(settings)) as bridge:
            direct = asyncio.run(
                run(
                    f"{emu}/v1/chat-messages",
                    {"inputs": {}, "query": "hi", "response_mode": "streaming", "user": "bench"},
                    {"Authorization": f"Bearer {args.key}"},
                    args.requests,
                    args.concurrency,
                )
            )
            bridged = asyncio.run(
                run(
                    f"{bridge}/v1/chat/completions",
                    {
                        "model": "o1",
                        "stream": True,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                    {"Authorization": f"Bearer {args.key}"},
                    args.requests,
                    args.concurrency,
                )
            )
    print(f"app={args.key} requests={args.requests} concurrency={args.concurrency}")
    print(
        f"median latency  bridge/direct: {bridged[0] / direct[0]:.2f}x "
        f"({bridged[0] * 1000:.1f} ms vs {direct[0] * 1000:.1f} ms on this machine)"
    )
    print(f"throughput      bridge/direct: {bridged[1] / direct[1]:.2f}x")


if __name__ == "__main__":
    main()
