"""The Dify emulator and the bridge as real servers, for the inputs integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bridge import create_app, load_settings
from bridge.emulator import EmulatorConfig, create_emulator_app
from tests.support.recordings import DSL_DIR
from tests.support.servers import serve_in_thread

MODELS = [
    # Option templates (no key): in passthrough mode the client's app key picks the app and a
    # model of this name lends its options.
    {"id": "echo-sys", "system_input": "system_prompt"},
    {"id": "echo-static", "inputs": {"system_prompt": "from config", "tone": "plain"}},
]


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    with serve_in_thread(create_emulator_app(EmulatorConfig(dsl_dir=DSL_DIR))) as url:
        yield url


def bridge_app(emulator_url: str, **overrides):
    env = {"DIFY_API_URL": f"{emulator_url}/v1", "BRIDGE_STORE": "memory://"}
    return create_app(load_settings(env=env, models=MODELS, **overrides))


@pytest.fixture(scope="module")
def bridge_url(emulator_url: str) -> Iterator[str]:
    with serve_in_thread(bridge_app(emulator_url)) as url:
        yield url


class Journal:
    """What reached "Dify": the emulator's request journal."""

    def __init__(self, emulator_url: str) -> None:
        self.url = emulator_url

    def clear(self) -> None:
        httpx.delete(f"{self.url}/_emulator/journal").raise_for_status()

    def entries(self, path_suffix: str) -> list[dict]:
        entries = httpx.get(f"{self.url}/_emulator/journal").json()
        return [e for e in entries if e["path"].endswith(path_suffix)]

    def runs(self) -> list[dict]:
        """Bodies of the generation calls (chat-messages, workflows/run, completion-messages)."""
        return [
            e["json"]
            for e in httpx.get(f"{self.url}/_emulator/journal").json()
            if e["method"] == "POST" and e["path"].endswith(("messages", "/run"))
        ]

    def uploads(self) -> list[dict]:
        return [e["form"] for e in self.entries("/files/upload")]

    def file_bytes(self, upload_file_id: str) -> bytes:
        response = httpx.get(f"{self.url}/_emulator/files/{upload_file_id}")
        response.raise_for_status()
        return response.content


@pytest.fixture
def journal(emulator_url: str) -> Journal:
    journal = Journal(emulator_url)
    journal.clear()
    return journal
