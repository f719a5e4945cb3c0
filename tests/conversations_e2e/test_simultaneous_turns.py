"""Requests continuing the same history at the same instant (issue 13): exactly one continues
the Dify conversation, every other one forks into a new conversation carrying the history."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conversations_e2e.conftest import (
    BRIDGE_KEY,
    CONVERSATION_HEADER,
    Emulator,
    bridge_in_thread,
    client_for,
    send,
)

SIMULTANEOUS = 6


async def _continue_at_once(
    urls: list[str], messages: list[dict[str, Any]], user: str
) -> list[str]:
    clients = [
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=BRIDGE_KEY, max_retries=0, timeout=30)
        for url in urls
    ]

    async def one(n: int) -> str:
        raw = await clients[n % len(clients)].chat.completions.with_raw_response.create(
            model="echo", messages=messages, user=user
        )
        return raw.headers[CONVERSATION_HEADER]

    try:
        return await asyncio.gather(*(one(n) for n in range(SIMULTANEOUS)))
    finally:
        for client in clients:
            await client.close()


@pytest.mark.parametrize("replicas", [1, 2])
async def test_simultaneous_continuations_of_one_history_continue_it_once(
    emulator: Emulator, user: str, tmp_path: Path, replicas: int
) -> None:
    # Two bridges share a SQLite file (one host, several processes' worth of connections);
    # one bridge alone uses its own store the same way.
    store = f"sqlite:///{tmp_path / 'conversations.db'}"
    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(bridge_in_thread(emulator.api_url, store=store))
            for _ in range(replicas)
        ]
        first = send(
            client_for(urls[0], timeout=30), [{"role": "user", "content": "start"}], user=user
        )
        history = [
            {"role": "user", "content": "start"},
            {"role": "assistant", "content": first.answer},
            {"role": "user", "content": "same next message"},
        ]

        conversation_ids = await _continue_at_once(urls, history, user)

    assert conversation_ids.count(first.conversation_id) == 1, conversation_ids
    assert len(set(conversation_ids)) == SIMULTANEOUS
    sent = emulator.journal(user)[1:]
    continued = [body for body in sent if body.get("conversation_id")]
    forked = [body for body in sent if not body.get("conversation_id")]
    assert [body["query"] for body in continued] == ["same next message"]
    assert continued[0]["conversation_id"] == first.conversation_id
    # Each fork carried the history, so its new conversation still knows what came before.
    assert len(forked) == SIMULTANEOUS - 1
    assert all("start" in body["query"] for body in forked)
