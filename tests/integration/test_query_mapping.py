"""What reaches Dify as the query: system prompts are never dropped."""

from __future__ import annotations

import httpx
import openai

from tests.integration.conftest import BRIDGE_KEY


def _last_query(emulator_url: str) -> dict:
    journal = httpx.get(f"{emulator_url}/_emulator/journal").json()
    return [e for e in journal if e["path"].endswith("/chat-messages")][-1]["json"]


def test_system_prompt_without_an_app_variable_is_carried_in_the_query(bridge_url, emulator_url):
    client = openai.OpenAI(base_url=f"{bridge_url}/v1", api_key=BRIDGE_KEY, max_retries=0)
    client.chat.completions.create(model="o1", messages=[
        {"role": "system", "content": "Answer like a cat."},
        {"role": "user", "content": "hello there"},
    ])
    query = _last_query(emulator_url)["query"]
    assert "Answer like a cat." in query and "hello there" in query


def test_a_single_user_message_is_sent_as_is(bridge_url, emulator_url):
    client = openai.OpenAI(base_url=f"{bridge_url}/v1", api_key=BRIDGE_KEY, max_retries=0)
    client.chat.completions.create(model="o1", messages=[{"role": "user", "content": "just this"}])
    body = _last_query(emulator_url)
    assert body["query"] == "just this"
    assert body["conversation_id"] == ""
