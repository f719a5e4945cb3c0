"""The emulator and a bridge on real ports for the dialect tests (Responses, legacy
completions, chat-UI housekeeping, 404s), with the emulator's LLM set fast."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from bridge.emulator import EmulatorConfig, create_emulator_app
from tests.integration.conftest import BRIDGE_KEY, make_bridge
from tests.support.recordings import DSL_DIR
from tests.support.servers import serve_in_thread


@pytest.fixture(scope="package")
def emulator_url() -> Iterator[str]:
    config = EmulatorConfig(
        dsl_dir=DSL_DIR,
        ping_interval=2.0,
        idle_timeout=30.0,
        llm_slow_interval=0.02,
        llm_wait_before_first=0.05,
    )
    with serve_in_thread(create_emulator_app(config)) as url:
        yield url


@pytest.fixture(scope="package")
def bridge_url(emulator_url: str) -> Iterator[str]:
    with serve_in_thread(make_bridge(emulator_url)) as url:
        yield url


@pytest.fixture
def client(bridge_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{bridge_url}/v1", api_key=BRIDGE_KEY, max_retries=0, timeout=30)


@pytest.fixture
def journal(emulator_url: str) -> Callable[[], list[dict[str, Any]]]:
    """The emulator's request journal, emptied first: what this test sent to "Dify"."""
    httpx.delete(f"{emulator_url}/_emulator/journal")

    def read() -> list[dict[str, Any]]:
        return httpx.get(f"{emulator_url}/_emulator/journal").json()

    return read


def app_runs(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Journal entries that ran an app (chat, completion or workflow)."""
    runs = ("/chat-messages", "/completion-messages", "/workflows/run")
    return [e for e in entries if e["method"] == "POST" and e["path"].endswith(runs)]
