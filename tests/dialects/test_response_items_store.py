"""Output items in the response store, on every backend: looked up per owner (another owner's
are not there), gone with their response, expiring with it; and responses stored before items
were kept (an older bridge's SQLite file or Redis keys) get their items indexed."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import pytest

from bridge.conversations.response_redis import RedisResponseStore
from bridge.conversations.responses import (
    ITEMS_PER_RESPONSE,
    ResponseStore,
    StoredItem,
    StoredResponse,
    open_response_store,
)
from bridge.openai.responses import (
    OutputMessage,
    OutputText,
    ReasoningItem,
    ResponseObject,
    SummaryText,
)
from tests.support.redis_server import RedisServer, redis_server_binary, start_redis_server

OWNER = "bridge-0123456789abcdef01234567"
STRANGER = "bridge-fedcba9876543210fedcba98"

# What a bridge without items wrote into the conversation store's file.
OLD_SQLITE_SCHEMA = """
CREATE TABLE responses (id TEXT PRIMARY KEY, body BLOB NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX responses_by_expiry ON responses (expires_at);
CREATE TABLE response_heads (
    conversation_id TEXT PRIMARY KEY, response_id TEXT NOT NULL, expires_at REAL NOT NULL
);
CREATE INDEX response_heads_by_expiry ON response_heads (expires_at);
"""


CREATED = int(time.time())  # one value: records built twice compare equal


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (CI installs it: apt-get install redis-server)")
    server = start_redis_server()
    yield server
    server.stop()


def flushed(server: RedisServer) -> str:
    import redis

    redis.Redis.from_url(server.url).flushdb()
    return server.url


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/conversations.db"
    else:
        yield flushed(request.getfixturevalue("redis_server"))


def record(response_id: str, *, owner: str = OWNER, text: str = "the answer") -> StoredResponse:
    suffix = response_id.removeprefix("resp_")
    return StoredResponse(
        id=response_id,
        owner=owner,
        app_id="app-identity",
        user="alice",
        conversation_id=f"c-{suffix}",
        message_id="m-1",
        history=[("user", "q"), ("assistant", text)],
        response=ResponseObject(
            id=response_id,
            created_at=CREATED,
            model="o1",
            status="completed",
            output=[
                ReasoningItem(id=f"rs_{suffix}", summary=[SummaryText(text="steps")]),
                OutputMessage(
                    id=f"msg_{suffix}",
                    status="completed",
                    content=[OutputText(text=text[:4]), OutputText(text=text[4:])],
                ),
            ],
        ),
    )


async def opened(url: str, *, ttl: float = 60.0, max_entries: int = 100) -> ResponseStore:
    return await open_response_store(url, ttl=ttl, max_entries=max_entries)


async def test_items_are_found_by_their_owner_only(store_url):
    store = await opened(store_url)
    try:
        await store.put(record("resp_a"))
        found = await store.items(OWNER, ["msg_a", "rs_a", "msg_unknown", "msg_a"])
        assert found == {
            "msg_a": StoredItem(
                id="msg_a", response_id="resp_a", type="message", text="the answer"
            ),
            "rs_a": StoredItem(id="rs_a", response_id="resp_a", type="reasoning", text=""),
        }
        assert await store.items(STRANGER, ["msg_a", "rs_a"]) == {}
        assert await store.items(OWNER, []) == {}
        # Ids the bridge never mints are not even looked up.
        assert await store.items(OWNER, ["msg_a" + "x" * 1000, ""]) == {}
    finally:
        await store.close()


async def test_items_go_with_their_response(store_url):
    store = await opened(store_url)
    try:
        await store.put(record("resp_a"))
        await store.put(record("resp_b"))
        assert await store.delete("resp_a") is True
        assert await store.items(OWNER, ["msg_a", "rs_a"]) == {}
        assert set(await store.items(OWNER, ["msg_b", "rs_b"])) == {"msg_b", "rs_b"}
    finally:
        await store.close()


async def test_items_expire_with_their_response(store_url):
    store = await opened(store_url, ttl=0.2)
    try:
        await store.put(record("resp_a"))
        assert await store.items(OWNER, ["msg_a"])
        deadline = time.monotonic() + 5
        while await store.items(OWNER, ["msg_a"]):
            assert time.monotonic() < deadline, "the item never expired"
            await asyncio.sleep(0.05)
    finally:
        await store.close()


async def test_memory_store_bounds_items_too():
    store = await opened("memory://", max_entries=2)
    for index in range(2 * ITEMS_PER_RESPONSE):
        await store.put(record(f"resp_{index}"))
    assert await store.items(OWNER, ["msg_0"]) == {}
    last = 2 * ITEMS_PER_RESPONSE - 1
    assert await store.items(OWNER, [f"msg_{last}"])


async def test_sqlite_store_bounds_items_when_pruning(tmp_path):
    store = await opened(f"sqlite:///{tmp_path}/conversations.db", max_entries=2)
    try:
        for index in range(70):  # past one pruning round (every 64 writes)
            await store.put(record(f"resp_{index}"))
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "conversations.db") as connection:
        (items,) = connection.execute("SELECT count(*) FROM response_items").fetchone()
        (responses,) = connection.execute("SELECT count(*) FROM responses").fetchone()
    assert items <= 2 * ITEMS_PER_RESPONSE + 2 * 6  # the bound, plus writes since the prune
    assert responses <= 2 + 6


# ---------------------------------------------------------------- before items were kept


def old_sqlite_file(path: Path, rows: list[tuple[str, bytes, float]]) -> None:
    with sqlite3.connect(path) as connection:
        connection.executescript(OLD_SQLITE_SCHEMA)
        connection.executemany("INSERT INTO responses VALUES (?, ?, ?)", rows)


async def test_sqlite_file_of_an_older_bridge_gets_its_items_indexed(tmp_path):
    path = tmp_path / "conversations.db"
    live = time.time() + 3600
    old_sqlite_file(
        path,
        [
            ("resp_old", msgspec.json.encode(record("resp_old")), live),
            ("resp_gone", msgspec.json.encode(record("resp_gone")), time.time() - 1),
            ("resp_junk", b"{not a record", live),
        ],
    )
    store = await opened(f"sqlite:///{path}")
    try:
        assert (await store.get("resp_old")) == record("resp_old")
        assert await store.get("resp_junk") is None
        assert set(await store.items(OWNER, ["msg_old", "rs_old", "msg_gone"])) == {
            "msg_old",
            "rs_old",
        }
        assert await store.items(STRANGER, ["msg_old"]) == {}
    finally:
        await store.close()
    with sqlite3.connect(path) as connection:
        (expires_at,) = connection.execute(
            "SELECT expires_at FROM response_items WHERE id = 'msg_old'"
        ).fetchone()
    assert expires_at == pytest.approx(live)  # expires with its response
    # Opened again: nothing to do, nothing lost.
    again = await opened(f"sqlite:///{path}")
    try:
        assert set(await again.items(OWNER, ["msg_old", "rs_old"])) == {"msg_old", "rs_old"}
    finally:
        await again.close()


async def test_redis_keys_of_an_older_bridge_get_their_items_indexed(redis_server):
    import redis.asyncio as redis

    url = flushed(redis_server)
    client = redis.Redis.from_url(url)
    try:
        await client.set(
            "dify-bridge:response:resp_old", msgspec.json.encode(record("resp_old")), px=3_600_000
        )
        await client.set("dify-bridge:response:resp_junk", b"{not a record", px=3_600_000)
        await client.set("dify-bridge:response-head:c-old", "resp_old", px=3_600_000)
        store = await opened(url)
        try:
            assert isinstance(store, RedisResponseStore)
            assert await store.backfilled() == 1
            assert set(await store.items(OWNER, ["msg_old", "rs_old"])) == {"msg_old", "rs_old"}
            assert await store.items(STRANGER, ["msg_old"]) == {}
            ttl = await client.pttl(f"dify-bridge:response-item:{OWNER}:msg_old")
            assert 0 < ttl <= 3_600_000
            assert await client.get("dify-bridge:response-items-indexed")
        finally:
            await store.close()
        # Done once: the next bridge does not scan again.
        await client.set(
            "dify-bridge:response:resp_later", msgspec.json.encode(record("resp_later")), px=60_000
        )
        again = await opened(url)
        try:
            assert isinstance(again, RedisResponseStore)
            assert await again.backfilled() == 0
            assert await again.items(OWNER, ["msg_later"]) == {}
        finally:
            await again.close()
    finally:
        await client.aclose()


async def test_redis_backfill_never_brings_back_a_deleted_responses_items(redis_server):
    # The pass reads a response, the client deletes it, then the pass writes its items: the
    # write is atomic with a check that the response is still there, so nothing comes back.
    store = await opened(flushed(redis_server))
    try:
        assert isinstance(store, RedisResponseStore)
        await store.backfilled()
        read_by_the_pass = record("resp_a")
        await store.put(read_by_the_pass)
        await store.delete("resp_a")
        assert await store._index_records([read_by_the_pass]) == 0
        assert await store.items(OWNER, ["msg_a", "rs_a"]) == {}
        # A live one is indexed, and what a current bridge wrote is not overwritten.
        await store.put(record("resp_b"))
        assert await store._index_records([record("resp_b", text="stale text")]) == 1
        assert (await store.items(OWNER, ["msg_b"]))["msg_b"].text == "the answer"
    finally:
        await store.close()


async def test_redis_backfill_waits_quietly_for_an_unreachable_redis():
    store = await opened("redis://127.0.0.1:1/0")
    try:
        assert isinstance(store, RedisResponseStore)
        assert await store.backfilled() == 0  # logged, tried again at the next start
    finally:
        await store.close()
