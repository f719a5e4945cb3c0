"""The failover rule and the breaker state machine, without a network."""

from __future__ import annotations

import asyncio

import pytest

from bridge.dify.client import DifyAPIError, DifyTimeout, DifyUnreachable
from bridge.upstreams.breaker import LocalBreakers, cooldown_ms, now_ms
from bridge.upstreams.failover import failover_cause


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (DifyUnreachable("ConnectError"), "unreachable"),
        (DifyAPIError(502, None, "Bad Gateway"), "http_502"),
        (DifyAPIError(503, None, "Service Unavailable"), "http_503"),
        (DifyAPIError(504, None, "Gateway Timeout"), "http_504"),
        (DifyAPIError(429, "too_many_requests", "Too many requests."), "rate_limited"),
        (
            DifyAPIError(400, "invalid_param", "Too many requests. Please try again later."),
            "rate_limited",
        ),
        (DifyAPIError(400, "provider_quota_exceeded", "quota"), "quota"),
        (DifyAPIError(400, "app_unavailable", "App unavailable."), "app_unavailable"),
        (DifyAPIError(401, "unauthorized", "Access token is invalid"), "invalid_key"),
        # The run may be executing, or the request itself is wrong: never elsewhere.
        (DifyTimeout("read timeout"), None),
        (DifyAPIError(400, "invalid_param", "query is required"), None),
        (DifyAPIError(404, "not_found", "Conversation Not Exists."), None),
        (DifyAPIError(500, None, "Internal Server Error"), None),
        (ValueError("x"), None),
    ],
)
def test_failover_only_when_the_run_cannot_have_started(exc, cause):
    assert failover_cause(exc) == cause


def test_breaker_ejects_after_consecutive_failures_and_grows_its_cooldown():
    async def scenario() -> None:
        breakers = LocalBreakers()
        for _ in range(2):
            state = await breakers.failure("u", 3, 10.0, 25.0)
            assert state.until == 0
        assert (await breakers.success("u", probe=False)).failures == 0  # not consecutive
        for _ in range(3):
            state = await breakers.failure("u", 3, 10.0, 25.0)
        assert state.ejected(now_ms())
        assert 9_000 < state.until - now_ms() <= 10_000
        # Probe success closes it; the next ejection (a half-open failure) is longer.
        assert (await breakers.success("u", probe=True)).until == 0
        for _ in range(3):
            state = await breakers.failure("u", 3, 10.0, 25.0)
        assert state.ejections == 2
        assert 19_000 < state.until - now_ms() <= 20_000
        # A real success after it was restored resets the growth.
        await breakers.success("u", probe=True)
        assert (await breakers.success("u", probe=False)).ejections == 0

    asyncio.run(scenario())


def test_cooldown_is_capped():
    assert cooldown_ms(1, 10.0, 300.0) == 10_000
    assert cooldown_ms(4, 10.0, 300.0) == 80_000
    assert cooldown_ms(12, 10.0, 300.0) == 300_000


def test_one_probe_at_a_time():
    async def scenario() -> None:
        breakers = LocalBreakers()
        assert await breakers.claim_probe("u", 5.0)
        assert not await breakers.claim_probe("u", 5.0)
        assert await breakers.claim_probe("v", 5.0)

    asyncio.run(scenario())


class _Fake:
    def __init__(self, name: str, ttfe: float | None = None, in_flight: int = 0) -> None:
        self.name, self.ttfe, self.in_flight, self.weight = name, ttfe, in_flight, 1.0


def test_latency_prefers_the_fastest_and_still_explores():
    from bridge.upstreams.balance import latency

    fast, slow = _Fake("fast", 0.05), _Fake("slow", 0.5)
    picks = [latency([slow, fast], turn).name for turn in range(2000)]
    # Exploration is 5 % at random between two: "slow" expected 50 of 2000 (sd ~7).
    assert 10 <= picks.count("slow") <= 120
    # An upstream with no figure yet is tried first.
    assert latency([fast, _Fake("new")], 0).name == "new"


def test_least_busy_takes_the_fewest_in_flight():
    from bridge.upstreams.balance import least_busy

    busy, idle = _Fake("busy", in_flight=3), _Fake("idle", in_flight=0)
    assert {least_busy([busy, idle], turn).name for turn in range(10)} == {"idle"}
