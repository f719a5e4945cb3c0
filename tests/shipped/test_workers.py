"""`dify-bridge serve --workers 2`: two processes behind one port share the default SQLite
store, so a conversation continues in one Dify conversation whichever worker serves a turn
(issue 22: workers stay correct)."""

from __future__ import annotations

import asyncio

import httpx

from tests.support.shipped import shipped_bridge, upstream_process

KEY = {"Authorization": "Bearer app-cat-llm"}  # dify-dsl/Cat_LLM.yml in the emulator


def test_conversations_stay_in_one_dify_conversation_across_two_workers() -> None:
    with (
        upstream_process("emulator") as dify,
        shipped_bridge(dify, serve_args=("--workers", "2")) as bridge,
    ):

        async def chat(index: int) -> set[str]:
            messages: list[dict[str, str]] = []
            ids: set[str] = set()
            # A new connection per turn, so the kernel spreads turns over both workers.
            for turn in range(4):
                messages.append({"role": "user", "content": f"chat {index} turn {turn}"})
                async with httpx.AsyncClient(timeout=30) as client:
                    response = await client.post(
                        f"{bridge.v1}/chat/completions",
                        json={"model": "o1", "messages": messages},
                        headers=KEY,
                    )
                assert response.status_code == 200, response.text
                answer = response.json()["choices"][0]["message"]["content"]
                assert answer == "喵"
                ids.add(response.headers["x-dify-conversation-id"])
                messages.append({"role": "assistant", "content": answer})
            return ids

        async def all_chats() -> list[set[str]]:
            return await asyncio.gather(*(chat(i) for i in range(8)))

        conversations = asyncio.run(all_chats())
        assert all(len(ids) == 1 for ids in conversations), conversations
        assert len(set().union(*conversations)) == 8
