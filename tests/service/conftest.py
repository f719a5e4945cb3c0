"""A Dify emulator on a real port, and bridges built against it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar

from bridge import create_app, load_settings
from bridge.emulator import EmulatorConfig, create_emulator_app
from tests.support.recordings import DSL_DIR
from tests.support.servers import serve_in_thread

BRIDGE_KEY = "sk-service-test-bridge-key"
CAT_KEY = "app-cat-llm"
BAD_KEY = "app-not-a-real-key-123"
MODELS = [
    {"id": "o1", "app_key": CAT_KEY},
    {"id": "slow", "app_key": "app-slowchat"},
]


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    config = EmulatorConfig(dsl_dir=DSL_DIR, ping_interval=2.0, llm_slow_interval=0.2)
    with serve_in_thread(create_emulator_app(config)) as url:
        yield url


def make_bridge(dify_api_url: str, **overrides: object) -> Litestar:
    env = {"DIFY_API_URL": dify_api_url, "BRIDGE_STORE": "memory://", "LOG_FORMAT": "json"}
    settings: dict[str, object] = {"api_keys": [BRIDGE_KEY], "models": MODELS}
    settings.update(overrides)
    return create_app(load_settings(env=env, **settings))
