"""What the SQLite store adds to the contract: persistence, WAL, URL forms, sharing a file."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from bridge.conversations import StoredTurn, StoreUnavailable, open_store
from bridge.conversations.sqlite import SqliteStore
from tests.conversations.conftest import eventually

TURN = StoredTurn(conversation_id="conv-a", turn=1, created_at=1_700_000_000.0)


async def test_data_survives_closing_and_reopening_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'conversations.db'}"
    store = await open_store(url, ttl=60, max_entries=100)
    await store.put("fp-1", TURN)
    await store.put_key("chat-1", "conv-a")
    await store.close()

    reopened = await open_store(url, ttl=60, max_entries=100)
    try:
        assert await reopened.get("fp-1") == TURN
        assert await reopened.head("conv-a") == "fp-1"
        assert await reopened.get_key("chat-1") == "conv-a"
    finally:
        await reopened.close()


async def test_database_uses_write_ahead_logging(tmp_path: Path) -> None:
    path = tmp_path / "conversations.db"
    store = await open_store(str(path), ttl=60, max_entries=100)
    try:
        assert isinstance(store, SqliteStore)
        assert await store.journal_mode() == "wal"
        with contextlib.closing(sqlite3.connect(path)) as other:
            assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        await store.close()


async def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "conversations.db"
    writer = await open_store(str(path), ttl=60, max_entries=100)
    reader = await open_store(str(path), ttl=60, max_entries=100)
    try:
        await writer.put("fp-1", TURN)

        assert await reader.get("fp-1") == TURN
        await reader.forget_conversation("conv-a")
        assert await writer.head("conv-a") is None
    finally:
        await writer.close()
        await reader.close()


async def test_relative_url_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    store = await open_store("sqlite:///data/conversations.db", ttl=60, max_entries=100)
    await store.close()

    assert (tmp_path / "data" / "conversations.db").is_file()


async def test_bare_path_opens_a_sqlite_store(tmp_path: Path) -> None:
    store = await open_store(str(tmp_path / "bare.db"), ttl=60, max_entries=100)
    await store.close()

    assert isinstance(store, SqliteStore)
    assert (tmp_path / "bare.db").is_file()


async def test_in_memory_database_works_for_tests() -> None:
    store = await open_store("sqlite:///:memory:", ttl=60, max_entries=100)
    try:
        await store.put("fp-1", TURN)
        assert await store.get("fp-1") == TURN
    finally:
        await store.close()


async def test_unusable_path_raises_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-directory.db").mkdir()

    with pytest.raises(StoreUnavailable):
        await open_store(str(tmp_path / "a-directory.db"), ttl=60, max_entries=100)


async def test_pruning_deletes_expired_rows_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "conversations.db"
    store = await open_store(str(path), ttl=0.05, max_entries=10)
    try:
        await store.put("fp-old", TURN)

        async def expired() -> bool:
            return await store.get("fp-old") is None

        assert await eventually(expired)

        await store.put("fp-new", TURN)  # at this size every write prunes

        with contextlib.closing(sqlite3.connect(path)) as other:
            rows = other.execute("SELECT fingerprint FROM turns").fetchall()
        assert ("fp-old",) not in rows
    finally:
        await store.close()
