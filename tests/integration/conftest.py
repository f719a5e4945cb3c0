"""The bridge and the Dify emulator as real servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge import create_app, load_settings
from bridge.emulator import EmulatorConfig, create_emulator_app
from tests.support.recordings import DSL_DIR
from tests.support.servers import serve_in_thread

BRIDGE_KEY = "sk-bridge-test-key"
MODELS = [
    {"id": "o1", "app_key": "app-cat-llm"},
    {"id": "upper", "app_key": "app-wf-upper", "reasoning": "off"},
    {"id": "echo-llm", "app_key": "app-llmchat"},
    {"id": "agent", "app_key": "app-llmagent", "reasoning": "off"},
    {"id": "completer", "app_key": "app-llmcompletion"},
    {"id": "fail-flow", "app_key": "app-failwf"},
    {"id": "fail-chat", "app_key": "app-failchat"},
    {"id": "bad-key", "app_key": "app-not-a-real-key-123"},
]


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    config = EmulatorConfig(
        dsl_dir=DSL_DIR, ping_interval=2.0, idle_timeout=30.0, llm_slow_interval=0.2,
        llm_wait_before_first=1.0,
    )
    with serve_in_thread(create_emulator_app(config)) as url:
        yield url


def make_bridge(emulator_url: str, **overrides):
    env = {"DIFY_API_URL": f"{emulator_url}/v1", "BRIDGE_STORE": "memory://"}
    # Both ways in: bridge keys for the managed models, and passthrough switched on explicitly
    # (with bridge keys it is off by default, issue 10).
    settings = {
        "api_keys": [BRIDGE_KEY],
        "passthrough": True,
        "models": MODELS,
        "aliases": {"gpt-4o": "o1"},
    }
    settings.update(overrides)
    return create_app(load_settings(env=env, **settings))


@pytest.fixture(scope="session")
def bridge_url(emulator_url: str) -> Iterator[str]:
    with serve_in_thread(make_bridge(emulator_url)) as url:
        yield url
