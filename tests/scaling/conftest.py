"""Shared pieces of the scaling tests: a real redis-server, an emulator in a thread, bridges."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from bridge import create_app, load_settings
from bridge.emulator import EmulatorConfig, create_emulator_app
from tests.support.recordings import DSL_DIR
from tests.support.redis_server import (
    RedisServer,
    RedisServerUnavailable,
    redis_server_binary,
    start_redis_server,
)
from tests.support.servers import serve_in_thread

# LLMChat (a chat app) streams one word per `llm_slow_interval` when the query says SLOW.
SLOW_APP_KEY = "app-llmchat"
SLOW_INTERVAL = 0.2


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (scripts/test.sh installs it)")
    try:
        server = start_redis_server()
    except RedisServerUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def emulator_api() -> Iterator[str]:
    config = EmulatorConfig(dsl_dir=DSL_DIR, llm_slow_interval=SLOW_INTERVAL)
    with serve_in_thread(create_emulator_app(config)) as url:
        yield f"{url}/v1"


@contextlib.contextmanager
def bridge_in_thread(api_url: str, **settings: Any) -> Iterator[str]:
    """A bridge on 127.0.0.1 (passthrough, memory store unless told otherwise)."""
    env = {"DIFY_API_URL": api_url, "BRIDGE_STORE": "memory://", "LOG_FORMAT": "console"}
    with serve_in_thread(create_app(load_settings(env=env, **settings))) as url:
        yield url
