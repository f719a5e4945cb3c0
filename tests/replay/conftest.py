from __future__ import annotations

from collections.abc import Callable

import pytest
from litestar.testing import AsyncTestClient

from bridge import create_app, load_settings
from tests.support.replay import DifyReplay


@pytest.fixture
def bridge_for() -> Callable:
    """Build a bridge (passthrough, memory store) whose Dify is a replay; use as async ctx."""

    def make(replay: DifyReplay, **settings):
        env = {"DIFY_API_URL": "http://dify.test/v1", "BRIDGE_STORE": "memory://"}
        app = create_app(load_settings(env=env, **settings), dify_transport=replay.transport)
        return AsyncTestClient(app)

    return make


AUTH = {"Authorization": "Bearer app-replaykey0000000000"}
