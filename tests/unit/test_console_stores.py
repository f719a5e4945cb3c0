"""The console's stores (SQLite KV: keys, usage, saved models, sessions) and its quota
arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.console.activity import RequestEntry, RequestLog, percentile
from bridge.console.keys import KeyStore
from bridge.console.kv import SqliteKV
from bridge.console.quota import insufficient_quota, over_budget, period_id, remaining, seconds_left
from bridge.console.saved_models import ModelStore, SavedModel, check_name
from bridge.routing.grants import key_sha256


@pytest.fixture
async def kv(tmp_path: Path):
    store = await SqliteKV.open(tmp_path / "console.db")
    yield store
    await store.close()


async def test_key_is_stored_hashed_and_revocable(kv: SqliteKV, tmp_path: Path) -> None:
    keys = KeyStore(kv)
    key, record = await keys.create("team-a", models=["o1"], budget_tokens=100)
    assert key.startswith("sk-br-") and record.key_sha256 == key_sha256(key)
    assert key.encode() not in (tmp_path / "console.db").read_bytes()
    found = await keys.lookup(key_sha256(key))
    assert found is not None and found.active and found.grant().allows("o1")
    assert not found.grant().allows("other")
    assert await keys.issued()
    assert (await keys.revoke(record.id)) is not None
    assert not (await keys.lookup(key_sha256(key))).active
    assert await keys.revoke(record.id) is None  # already revoked


async def test_usage_counts_per_period(kv: SqliteKV) -> None:
    keys = KeyStore(kv)
    _, record = await keys.create("b", budget_tokens=10, budget_period="month")
    jan = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    await keys.add_usage(record.key_sha256, 6, now=jan)
    await keys.add_usage(record.key_sha256, 5, now=jan)
    assert await keys.used(record, now=jan) == 11
    assert over_budget(11, record.budget_tokens)
    feb = datetime(2026, 2, 1, 0, 1, tzinfo=UTC)
    assert await keys.used(record, now=feb) == 0
    assert await keys.used_on(record.key_sha256, "day", now=jan) == 11


async def test_session_tokens_are_hidden_and_not_issued_keys(kv: SqliteKV) -> None:
    keys = KeyStore(kv)
    token = await keys.session_token(60)
    assert (await keys.lookup(key_sha256(token))).session
    assert await keys.all() == [] and not await keys.issued()


async def test_saved_models_and_version(kv: SqliteKV) -> None:
    models = ModelStore(kv)
    before = await models.version("models")
    await models.save(SavedModel(id="cat", dify_url="http://d/v1", app_key="app-x", aliases=["c2"]))
    assert await models.version("models") == before + 1
    [saved] = await models.all()
    assert [c.id for c in saved.configs()] == ["cat", "c2"]
    assert saved.key_hint == "…"  # short keys are not even partly shown
    assert await models.remove("cat") and not await models.remove("cat")
    assert check_name("ok-name:1") is None and check_name("bad name") is not None


def test_quota_arithmetic() -> None:
    now = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert period_id("day", now) == "d2026-02-28" and period_id("month", now) == "m2026-02"
    assert seconds_left("day", now) == 12 * 3600
    assert seconds_left("month", now) == 12 * 3600
    assert not over_budget(9, 10) and over_budget(10, 10) and not over_budget(10**9, None)
    assert remaining(12, 10) == 0 and remaining(3, 10) == 7 and remaining(3, None) is None
    error = insufficient_quota("day")
    assert error.status == 429 and error.body()["error"]["code"] == "insufficient_quota"
    assert error.headers()["x-should-retry"] == "false"


def test_request_log_ring_and_minutes() -> None:
    log = RequestLog(3)
    for i in range(5):
        log.add(
            RequestEntry(
                time=600.0 + i,
                request_id=f"r{i}",
                key_name="k" if i % 2 else None,
                key_sha256=None,
                path="/v1/chat/completions",
                model="o1",
                status=500 if i == 4 else 200,
                stream=True,
                ttft_ms=float(i),
                duration_ms=1.0,
            )
        )
    assert [e.request_id for e in log.recent(10)] == ["r4", "r3", "r2"]
    assert [e.request_id for e in log.recent(10, key_name="k")] == ["r3"]
    log.count(log.fresh(), now=610.0)
    assert log.fresh() == []
    live = log.live(now=610.0)
    assert live["requests_per_minute"] == 3 and live["error_rate"] == pytest.approx(1 / 3)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) in (2.0, 3.0)
