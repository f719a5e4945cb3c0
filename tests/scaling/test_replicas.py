"""Three replicas behind haproxy (issue 13): conversations, drains and stops work whichever
replica a request lands on. Needs haproxy and redis-server (scripts/test.sh installs both)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tests.scaling.cluster import REPLICAS, SERVED_BY, Cluster, running_cluster, wait_until
from tests.support.redis_server import redis_server_binary

APP_KEY = "app-llmchat"  # a chat app: Dify keeps the conversation
CHATS = 50
TURNS = 5
CONVERSATION_HEADER = "x-dify-conversation-id"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        pytest.skip("haproxy is not installed (scripts/test.sh installs it)")
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (scripts/test.sh installs it)")
    with running_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


class Turn(msgspec.Struct):
    status: int
    conversation_id: str | None
    replica: str | None
    answer: str
    complete: bool


async def _turn(
    client: httpx.AsyncClient, user: str, messages: list[dict[str, Any]], stream: bool
) -> Turn:
    body = {"model": "llm", "messages": messages, "user": user, "stream": stream}
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        raw = await response.aread()
    conversation_id = response.headers.get(CONVERSATION_HEADER)
    replica = response.headers.get(SERVED_BY)
    if response.status_code != 200:
        return Turn(
            response.status_code, conversation_id, replica, raw.decode(errors="replace"), False
        )
    if not stream:
        answer = msgspec.json.decode(raw)["choices"][0]["message"]["content"]
        return Turn(200, conversation_id, replica, answer, True)
    answer, complete = "", False
    for line in raw.decode().splitlines():
        if line == "data: [DONE]":
            complete = True
        elif line.startswith("data: "):
            chunk = msgspec.json.decode(line[6:])
            if "error" in chunk:
                return Turn(200, conversation_id, replica, str(chunk["error"]), False)
            for choice in chunk.get("choices", []):
                answer += (choice.get("delta") or {}).get("content") or ""
    return Turn(200, conversation_id, replica, answer, complete)


async def _chat(
    client: httpx.AsyncClient, user: str, slow_turn: int | None, done: list[int]
) -> list[Turn]:
    messages: list[dict[str, Any]] = []
    turns = []
    for turn in range(TURNS):
        # SLOW makes the emulator's model stream one word a second: a stream in flight.
        text = f"SLOW turn {turn}" if turn == slow_turn else f"{user} turn {turn}"
        messages.append({"role": "user", "content": text})
        result = await _turn(client, user, messages, stream=turn % 2 == 1)
        turns.append(result)
        done.append(1)
        if result.status != 200 or not result.complete:
            break
        messages.append({"role": "assistant", "content": result.answer})
    return turns


def _client(cluster: Cluster) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=cluster.url,
        headers={"Authorization": f"Bearer {APP_KEY}"},
        timeout=60,
        limits=httpx.Limits(max_connections=CHATS * 2),
    )


def _chat_messages_by_user(cluster: Cluster, prefix: str) -> dict[str, list[dict[str, Any]]]:
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in cluster.journal():
        body = entry.get("json") or {}
        if entry["path"].endswith("/chat-messages") and str(body.get("user", "")).startswith(
            prefix
        ):
            by_user[body["user"]].append(body)
    return by_user


def _assert_one_conversation_per_chat(
    cluster: Cluster, prefix: str, users: list[str], chats: list[list[Turn]]
) -> None:
    sent = _chat_messages_by_user(cluster, prefix)
    for user, turns in zip(users, chats, strict=True):
        assert [t.status for t in turns] == [200] * TURNS, (user, turns)
        assert all(t.complete for t in turns), (user, turns)
        ids = {t.conversation_id for t in turns}
        assert len(ids) == 1 and None not in ids, (user, turns)
        bodies = sent[user]
        # Dify saw one new conversation, then four turns continuing exactly that one.
        assert len(bodies) == TURNS, bodies
        assert not bodies[0].get("conversation_id")
        assert [b.get("conversation_id") for b in bodies[1:]] == [turns[0].conversation_id] * 4


def test_fifty_concurrent_five_turn_chats_each_stay_in_one_dify_conversation(
    cluster: Cluster,
) -> None:
    prefix = f"rr-{uuid.uuid4().hex[:8]}"
    users = [f"{prefix}-{n}" for n in range(CHATS)]

    async def run() -> list[list[Turn]]:
        async with _client(cluster) as client:
            return await asyncio.gather(*(_chat(client, user, None, []) for user in users))

    chats = asyncio.run(run())

    _assert_one_conversation_per_chat(cluster, prefix, users, chats)
    served = Counter(t.replica for turns in chats for t in turns)
    assert set(served) == {f"replica{n}" for n in range(REPLICAS)}
    # Round-robin spreads each chat's turns: continuing needs no stickiness.
    spread = sum(1 for turns in chats if len({t.replica for t in turns}) > 1)
    assert spread >= CHATS * 0.8


def _active_streams(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=2).text.splitlines():
        if line.startswith("bridge_active_streams "):
            return float(line.split()[1])
    return 0.0


def test_sigterm_to_one_replica_under_load_fails_no_request(cluster: Cluster) -> None:
    prefix = f"drain-{uuid.uuid4().hex[:8]}"
    users = [f"{prefix}-{n}" for n in range(CHATS)]
    victim = 1
    victim_url = cluster.bridge_url(victim)
    done: list[int] = []

    async def run() -> tuple[list[list[Turn]], float]:
        async with _client(cluster) as client:
            load = asyncio.gather(*(_chat(client, user, 1, done) for user in users))
            # SIGTERM once the victim holds streams in flight (the turn-1 streams are slow).
            streams = 0.0
            for _ in range(400):
                streams = await asyncio.to_thread(_active_streams, victim_url)
                if streams >= 1:
                    break
                await asyncio.sleep(0.05)
            cluster.bridges[victim].terminate()
            return await load, streams

    try:
        chats, streams_at_sigterm = asyncio.run(run())
        assert streams_at_sigterm >= 1
        failed = [
            (user, t)
            for user, turns in zip(users, chats, strict=True)
            for t in turns
            if t.status != 200 or not t.complete
        ]
        assert failed == []
        _assert_one_conversation_per_chat(cluster, prefix, users, chats)
        # The victim drained within its grace and exited; the others took over.
        cluster.bridges[victim].stop()
        assert cluster.bridges[victim].process.returncode in (0, -15), cluster.bridges[victim].log()
    finally:
        cluster.bridges[victim].stop()
        cluster.start_bridge(victim)
        wait_until(cluster.all_replicas_up, within=30, what="the victim back in the balancer")


def test_a_client_disconnect_stops_the_dify_task_whichever_replica_served_it(
    cluster: Cluster,
) -> None:
    prefix = f"gone-{uuid.uuid4().hex[:8]}"
    users = [f"{prefix}-{n}" for n in range(REPLICAS)]
    replicas = set()
    for user in users:
        body = {
            "model": "llm",
            "stream": True,
            "user": user,
            "messages": [{"role": "user", "content": "SLOW " + " ".join(["word"] * 30)}],
        }
        with (
            httpx.Client(base_url=cluster.url, timeout=30) as client,
            client.stream(
                "POST",
                "/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {APP_KEY}"},
            ) as response,
        ):
            assert response.status_code == 200
            replicas.add(response.headers[SERVED_BY])
            lines = response.iter_lines()
            next(line for line in lines if line.startswith("data: "))
            lines.close()  # the client goes away mid-stream

    def stops() -> dict[str, int]:
        found: dict[str, int] = Counter()
        for entry in cluster.journal():
            body = entry.get("json") or {}
            if entry["path"].endswith("/stop") and body.get("user") in users:
                found[body["user"]] += 1
        return found

    wait_until(
        lambda: set(stops()) == set(users), within=15, what="a stop call per disconnected stream"
    )
    assert len(replicas) == REPLICAS  # one disconnect on each replica
