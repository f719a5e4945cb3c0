"""Bridges for the stream-fidelity tests: over recorded Dify streams (replay) or over the
emulator running real DSL apps, served on 127.0.0.1 so the official openai SDK can call them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from bridge import create_app, load_settings
from bridge.emulator import EmulatorConfig, create_emulator_app
from tests.support.recordings import DSL_DIR
from tests.support.replay import DifyReplay
from tests.support.servers import serve_in_thread

REPLAY_URL = "http://dify.test/v1"
AUTH = {"Authorization": "Bearer app-replaykey0000000000"}
HI = {"model": "o1", "messages": [{"role": "user", "content": "hi"}]}


def replay_settings(**settings: Any):
    env = {"DIFY_API_URL": REPLAY_URL, "BRIDGE_STORE": "memory://", "LOG_FORMAT": "json"}
    return load_settings(env=env, **settings)


@pytest.fixture
def bridge_for() -> Callable[..., AsyncTestClient]:
    """An in-process bridge whose Dify is a replay; use as `async with`."""

    def make(replay: DifyReplay, **settings: Any) -> AsyncTestClient:
        return AsyncTestClient(create_app(replay_settings(**settings), dify_transport=replay.transport))

    return make


@pytest.fixture
def served_replay() -> Callable[..., contextlib.AbstractContextManager[str]]:
    """A bridge over a replay on a real port (for the openai SDK); yields its `/v1` URL."""

    @contextlib.contextmanager
    def serve(replay: DifyReplay, **settings: Any) -> Iterator[str]:
        app = create_app(replay_settings(**settings), dify_transport=replay.transport)
        with serve_in_thread(app) as url:
            yield f"{url}/v1"

    return serve


@pytest.fixture(scope="module")
def emulator() -> Iterator[tuple[str, Any]]:
    """The Dify emulator with short timings: (base URL, the emulator app)."""
    app = create_emulator_app(
        EmulatorConfig(
            dsl_dir=Path(DSL_DIR),
            ping_interval=30.0,  # no Dify pings: the bridge's own keepalives are under test
            llm_slow_interval=0.3,
            llm_wait_before_first=3.0,
        )
    )
    with serve_in_thread(app) as url:
        yield url, app


@pytest.fixture
def served_bridge(emulator) -> Callable[..., contextlib.AbstractContextManager[str]]:
    """A bridge in front of the emulator (passthrough); yields its `/v1` URL."""
    emulator_url, _ = emulator

    @contextlib.contextmanager
    def serve(**settings: Any) -> Iterator[str]:
        env = {"DIFY_API_URL": f"{emulator_url}/v1", "BRIDGE_STORE": "memory://", "LOG_FORMAT": "json"}
        with serve_in_thread(create_app(load_settings(env=env, **settings))) as url:
            yield f"{url}/v1"

    return serve
