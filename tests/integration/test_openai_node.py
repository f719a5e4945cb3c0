"""The official openai npm package (what FastGPT uses) against the bridge."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import BRIDGE_KEY

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_openai_node_sdk_stream_and_non_stream(bridge_url):
    if not (NODE_DIR / "node_modules" / "openai").exists():
        pytest.fail("tests/node/node_modules is missing: run scripts/test.sh (it runs npm install)")
    env = {**os.environ, "BRIDGE_BASE_URL": f"{bridge_url}/v1", "BRIDGE_API_KEY": BRIDGE_KEY}
    result = subprocess.run(
        ["node", "chat.mjs"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["content"] == "喵"
    assert summary["streamed"] == "喵"
    assert summary["roles"] == ["assistant"]
    assert summary["finish"] == "stop"
    assert summary["usage"]["total_tokens"] == 0
    assert summary["errorStatus"] == 404
