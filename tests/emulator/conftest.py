from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.emulator import EmulatorConfig, create_emulator_app
from tests.support.recordings import DSL_DIR
from tests.support.servers import serve_in_thread

# Recording key (app) per recording id, by the app the README says produced it.
KEYS = {
    "Cat_LLM": "app-cat-llm",
    "WF_Upper": "app-wf-upper",
    "EchoChat": "app-echochat",
}


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    app = create_emulator_app(
        EmulatorConfig(
            dsl_dir=Path(DSL_DIR),
            ping_interval=0.3,
            idle_timeout=0.6,
            start_failure_hold=0.6,
            code_timeout=1.0,
            llm_slow_interval=0.2,
            llm_wait_before_first=0.8,
        )
    )
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def client(emulator_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator_url, timeout=20) as c:
        yield c
