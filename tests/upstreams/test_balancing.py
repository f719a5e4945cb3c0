"""Balancing and failover over three `dify-bridge emulator` processes (the same DSL each),
the bridge in front as shipped (`dify-bridge serve`, default settings)."""

from __future__ import annotations

import threading

import pytest

from tests.support.shipped import emulator_processes, shipped_bridge, upstream_process
from tests.upstreams.helpers import EMULATOR_ARGS, config_file, group, many, metric, say


@pytest.fixture(scope="module")
def emulators():
    with emulator_processes(3, *EMULATOR_ARGS) as started:
        yield started


def _runs(emulators) -> list[int]:
    return [e.runs() for e in emulators]


def test_weights_3_to_1_split_1000_requests(emulators):
    a, b = emulators[0], emulators[1]
    config = config_file([group([a.url, b.url], weights=[3, 1])])
    before = _runs([a, b])
    with shipped_bridge(a.url, BRIDGE_CONFIG=config) as bridge:
        answers = many(1000, lambda i: say(bridge.url, f"w {i}"))
    assert all(r.status_code == 200 for r in answers)
    got_a, got_b = (x - y for x, y in zip(_runs([a, b]), before, strict=True))
    assert got_a + got_b == 1000
    # Binomial(1000, 0.75): sd 13.7; 5 sd either side of 750 fails by chance ~1 in 1.7e6.
    assert 681 <= got_a <= 819, (got_a, got_b)


def test_round_robin_is_exact(emulators):
    config = config_file([group([e.url for e in emulators], balance="round_robin")])
    before = _runs(emulators)
    with shipped_bridge(emulators[0].url, BRIDGE_CONFIG=config) as bridge:
        answers = many(30, lambda i: say(bridge.url, f"rr {i}"), workers=1)
    assert all(r.status_code == 200 for r in answers)
    assert [x - y for x, y in zip(_runs(emulators), before, strict=True)] == [10, 10, 10]


def test_least_busy_prefers_the_idle_upstream(emulators):
    config = config_file([group([e.url for e in emulators], balance="least_busy")])
    before = _runs(emulators)
    with shipped_bridge(emulators[0].url, BRIDGE_CONFIG=config) as bridge:
        # Two slow runs (the emulator waits 1 s per word of "SLOW …") hold two upstreams.
        slow = [
            threading.Thread(target=say, args=(bridge.url, f"SLOW one two three {i}"))
            for i in range(2)
        ]
        for thread in slow:
            thread.start()
        for _ in range(100):  # until both slow runs are in flight (bounded)
            if metric(bridge.url, "bridge_upstream_in_flight", model="o1") >= 2:
                break
            threading.Event().wait(0.05)
        quick = many(6, lambda i: say(bridge.url, f"quick {i}"), workers=1)
        busy_during = metric(bridge.url, "bridge_upstream_in_flight", model="o1")
        for thread in slow:
            thread.join()
    assert all(r.status_code == 200 for r in quick)
    assert busy_during >= 2  # the slow runs were still running while the quick ones went
    got = [x - y for x, y in zip(_runs(emulators), before, strict=True)]
    assert sorted(got) == [1, 1, 6], got  # all quick runs on the idle one


@pytest.mark.parametrize("fault", ["quota", "429"])
def test_refusing_upstream_moves_traffic_without_client_errors(emulators, fault):
    healthy = emulators[2]
    with upstream_process("fault", "--behind", healthy.url, "--fault", fault) as refusing:
        config = config_file([group([refusing, healthy.url], balance="round_robin")])
        before = healthy.runs()
        with shipped_bridge(healthy.url, BRIDGE_CONFIG=config) as bridge:
            answers = many(20, lambda i: say(bridge.url, f"f {i}"), workers=4)
            cause = "quota" if fault == "quota" else "rate_limited"
            failovers = metric(bridge.url, "bridge_upstream_failovers_total", cause=cause)
            ejections = metric(bridge.url, "bridge_upstream_ejections_total", upstream="u0")
    assert [r.status_code for r in answers] == [200] * 20
    assert healthy.runs() - before == 20  # every answer came from the healthy one
    assert failovers >= 1
    assert ejections == 1  # 3 refusals eject it; nothing more was sent to it in its cool-down


def test_a_run_that_failed_after_its_first_event_is_never_retried(emulators):
    config = config_file([group([e.url for e in emulators], balance="round_robin")])
    before = sum(_runs(emulators))
    with shipped_bridge(emulators[0].url, BRIDGE_CONFIG=config) as bridge:
        # FAILLLM: the chatflow starts (workflow_started), then its LLM node fails.
        answer = say(bridge.url, "FAILLLM please")
        failovers = metric(bridge.url, "bridge_upstream_failovers_total")
    assert answer.status_code >= 400 or "error" in answer.text
    assert sum(_runs(emulators)) - before == 1
    assert failovers == 0
