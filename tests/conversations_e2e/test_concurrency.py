"""Many conversations at once through one bridge: no cross-talk between them."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import openai

from tests.conversations_e2e.conftest import BRIDGE_KEY, CONVERSATION_HEADER, previous_query

CONVERSATIONS = 50
TURNS = 5


async def _converse(
    client: openai.AsyncOpenAI, number: int, user: str, chat_key: str | None
) -> list[tuple[str, str | None, str]]:
    """One chat of five turns; returns (query, header conversation id, answer) per turn.

    A chat with a ``chat_key`` opens exactly like the others with a key (``hello``):
    identical histories of one user are one conversation state to the fingerprint, so only
    the key tells those chats apart.
    """
    messages: list[dict[str, Any]] = []
    headers = {}
    if chat_key is not None:
        headers["X-Conversation-Key"] = chat_key
    turns = []
    for turn in range(TURNS):
        text = "hello" if chat_key and turn == 0 else f"chat {number} turn {turn}"
        messages.append({"role": "user", "content": text})
        raw = await client.chat.completions.with_raw_response.create(
            model="echo",
            messages=messages,
            user=user,
            stream=turn % 2 == 1,
            extra_headers=headers,
        )
        if turn % 2 == 1:
            stream = raw.parse()
            answer = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        else:
            answer = raw.parse().choices[0].message.content or ""
        messages.append({"role": "assistant", "content": answer})
        turns.append((text, raw.headers.get(CONVERSATION_HEADER), answer))
    return turns


async def test_fifty_parallel_five_turn_chats_each_keep_to_their_own_dify_conversation(
    bridge_url, emulator, user
):
    client = openai.AsyncOpenAI(
        base_url=f"{bridge_url}/v1", api_key=BRIDGE_KEY, max_retries=0, timeout=60
    )
    shared_user = f"{user}-shared"
    # Odd chats: a user each. Even chats: one user for all, told apart by their histories
    # (n % 4 == 0) or, with identical openings, by their conversation keys (n % 4 == 2).
    users = [f"{user}-{n}" if n % 2 else shared_user for n in range(CONVERSATIONS)]
    keys = [f"{user}-key-{n}" if n % 4 == 2 else None for n in range(CONVERSATIONS)]
    async with client:
        chats = await asyncio.gather(
            *(_converse(client, n, users[n], keys[n]) for n in range(CONVERSATIONS))
        )

    journal = await asyncio.to_thread(emulator.journal)
    sent_by_conversation: dict[str, list[str]] = defaultdict(list)
    for body in journal:
        if body.get("user", "").startswith(user) and body.get("conversation_id"):
            sent_by_conversation[body["conversation_id"]].append(body["query"])
    seen_ids = set()
    for turns in chats:
        ids = {conversation_id for _, conversation_id, _ in turns}
        assert len(ids) == 1 and None not in ids, turns
        conversation_id = ids.pop()
        seen_ids.add(conversation_id)
        queries = [text for text, _, _ in turns]
        # Every continued turn went to this chat's conversation with just its new message …
        assert sent_by_conversation[conversation_id] == queries[1:]
        # … and Dify's memory in each answer is this chat's own previous message.
        assert [previous_query(answer) for _, _, answer in turns] == ["", *queries[:-1]]
    assert len(seen_ids) == CONVERSATIONS
