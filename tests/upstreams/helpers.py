"""Shared pieces of the upstream-group tests: config files, requests, metric reading."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

# tests/fixtures/dsl/llm_chatflow.yml (advanced-chat): its LLM node echoes the query, waits a
# second per word on "SLOW", fails after `workflow_started` on "FAILLLM".
DSL_DIR = str(Path(__file__).resolve().parents[1] / "fixtures" / "dsl")
EMULATOR_ARGS = ("--dsl-dir", DSL_DIR)
CHAT_KEY = "app-llmchatflow"


def config_file(models: list[dict[str, Any]], **top: Any) -> str:
    path = Path(tempfile.mkdtemp(prefix="upstreams-")) / "bridge.yaml"
    path.write_text(json.dumps({"models": models, **top}))  # JSON is YAML
    return str(path)


def group(urls: list[str], key: str = CHAT_KEY, **options: Any) -> dict[str, Any]:
    weights = options.pop("weights", None) or [1] * len(urls)
    return {
        "id": "o1",
        "upstreams": [
            {"dify_url": url, "app_key": key, "name": f"u{i}", "weight": weights[i]}
            for i, url in enumerate(urls)
        ],
        **options,
    }


def chat(base: str, messages: list[dict[str, str]], **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/chat/completions",
        json={"model": "o1", "messages": messages, **extra},
        timeout=60,
    )


def say(base: str, text: str) -> httpx.Response:
    return chat(base, [{"role": "user", "content": text}])


def many(count: int, call: Any, workers: int = 16) -> list[httpx.Response]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(call, range(count)))


def metric(base: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}{{(.*)}} (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def lines(log: list[dict[str, Any]], event: str) -> Iterator[dict[str, Any]]:
    return (line for line in log if line.get("event") == event)
