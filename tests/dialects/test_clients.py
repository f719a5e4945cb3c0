"""Clients whose default OpenAI model uses the Responses API: pydantic-ai (`openai:<model>`)
and the Vercel AI SDK's `@ai-sdk/openai` provider (`openai('<model>')`, Node; ai@6 and ai@5)."""

from __future__ import annotations

import pytest

from tests.dialects.node_sdk import run_node
from tests.integration.conftest import BRIDGE_KEY


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


@pytest.mark.parametrize("major", ["6", "5"])
def test_vercel_ai_sdk_default_openai_provider(bridge_url, major):
    summary = run_node("ai_sdk.mjs", bridge_url, BRIDGE_KEY, AI_SDK=major)
    assert summary["text"] == "喵"
    assert summary["reasoning"].strip()
    assert summary["finish"] == "stop"
    assert summary["responseId"].startswith("resp_")
    assert summary["followUp"] == "喵"
    assert summary["streamed"] == "喵"
    assert summary["streamFinish"] == "stop"
