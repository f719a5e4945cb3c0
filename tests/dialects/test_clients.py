"""Clients whose default OpenAI model uses the Responses API: pydantic-ai (`openai:<model>`)
and the Vercel AI SDK's `@ai-sdk/openai` provider (`openai('<model>')`, Node)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import BRIDGE_KEY

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


def test_pydantic_ai_default_openai_model(bridge_url, monkeypatch):
    pytest.importorskip("pydantic_ai", reason="pydantic-ai-slim[openai] is in the test extra")
    from pydantic_ai import Agent

    monkeypatch.setenv("OPENAI_BASE_URL", f"{bridge_url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", BRIDGE_KEY)
    agent = Agent("openai:o1")
    result = agent.run_sync("hi")
    assert result.output == "喵"
    response = result.all_messages()[-1]
    # `openai:` models speak the Responses API (the id is the bridge's `resp_…`), and the
    # flow's steps arrive as thinking.
    assert response.provider_response_id.startswith("resp_")
    assert [type(part).__name__ for part in response.parts] == ["ThinkingPart", "TextPart"]

    async def streamed() -> str:
        async with agent.run_stream("hello") as stream:
            return await stream.get_output()

    import asyncio

    assert asyncio.run(streamed()) == "喵"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_vercel_ai_sdk_default_openai_provider(bridge_url):
    if not (NODE_DIR / "node_modules" / "@ai-sdk" / "openai").exists():
        pytest.fail(
            "tests/node/node_modules is incomplete: run scripts/test.sh (it runs npm install)"
        )
    env = {**os.environ, "BRIDGE_BASE_URL": f"{bridge_url}/v1", "BRIDGE_API_KEY": BRIDGE_KEY}
    result = subprocess.run(
        ["node", "ai_sdk.mjs"],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["text"] == "喵"
    assert summary["reasoning"].strip()
    assert summary["finish"] == "stop"
    assert summary["responseId"].startswith("resp_")
    assert summary["followUp"] == "喵"
    assert summary["streamed"] == "喵"
    assert summary["streamFinish"] == "stop"
