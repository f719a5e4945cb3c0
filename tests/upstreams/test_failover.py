"""An upstream dies under load; conversations stay with their owner; the breaker opens,
probes and closes; with Redis, two bridge replicas eject together. Real processes only:
emulators, bridges (`dify-bridge serve`) and redis-server."""

from __future__ import annotations

import time

import httpx

from tests.support.redis_server import running_redis_server
from tests.support.shipped import emulator_processes, shipped_bridge
from tests.upstreams.helpers import (
    EMULATOR_ARGS,
    chat,
    config_file,
    group,
    lines,
    many,
    metric,
    say,
)

FAST_BREAKER = {"failures": 3, "cooldown": 2.0, "max_cooldown": 4.0}


def _owners(emulators, texts: list[str]) -> dict[str, int]:
    """Which emulator received each first message (from their journals)."""
    owners: dict[str, int] = {}
    for index, emulator in enumerate(emulators):
        journal = httpx.get(emulator.url.removesuffix("/v1") + "/_emulator/journal").json()
        for entry in journal:
            query = (entry.get("json") or {}).get("query")
            if query in texts:
                owners[query] = index
    return owners


def _turn_two(base: str, first: str, answer: str) -> httpx.Response:
    return chat(
        base,
        [
            {"role": "user", "content": first},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": f"and then? ({first})"},
        ],
    )


def _until(check, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_killed_upstream_owner_rule_breaker_and_recovery():
    with emulator_processes(3, *EMULATOR_ARGS) as emulators:
        config = config_file(
            [group([e.url for e in emulators], balance="round_robin", breaker=FAST_BREAKER)]
        )
        with shipped_bridge(emulators[0].url, BRIDGE_CONFIG=config, LOG_FORMAT="json") as bridge:
            firsts = [f"conversation {i}" for i in range(9)]
            answers = [say(bridge.url, text) for text in firsts]
            assert all(r.status_code == 200 for r in answers)
            replies = [r.json()["choices"][0]["message"]["content"] for r in answers]
            owners = _owners(emulators, firsts)
            assert sorted(owners.values()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]

            emulators[0].kill()
            # 50 concurrent new conversations: none fails (refused connections fail over).
            fresh = many(50, lambda i: say(bridge.url, f"new while down {i}"), workers=16)
            assert [r.status_code for r in fresh] == [200] * 50
            assert metric(bridge.url, "bridge_upstream_ejections_total", upstream="u0") >= 1
            assert metric(bridge.url, "bridge_upstream_healthy", upstream="u0") == 0
            assert metric(bridge.url, "bridge_upstream_failovers_total", cause="unreachable") >= 1

            # Continuing turns: the dead upstream's conversations get 503 + Retry-After.
            for first, reply in zip(firsts, replies, strict=True):
                answer = _turn_two(bridge.url, first, reply)
                if owners[first] == 0:
                    assert answer.status_code == 503, answer.text
                    assert answer.json()["error"]["code"] == "upstream_unavailable"
                    assert int(answer.headers["retry-after"]) >= 1
                else:
                    assert answer.status_code == 200, answer.text

            # Back at the same port: the cool-down ends, the probe closes the breaker.
            emulators[0].start()
            assert _until(
                lambda: (
                    say(bridge.url, "probe me").status_code == 200
                    and metric(bridge.url, "bridge_upstream_healthy", upstream="u0") == 1
                )
            )
            assert metric(bridge.url, "bridge_upstream_restores_total", upstream="u0") >= 1
            restored = next(f for f in firsts if owners[f] == 0)
            again = _turn_two(bridge.url, restored, replies[firsts.index(restored)])
            assert again.status_code == 200, again.text
            log = bridge.log_lines()
        assert list(lines(log, "upstream_ejected"))
        assert list(lines(log, "upstream_restored"))
        requests = [line for line in lines(log, "request") if line.get("upstream_attempts")]
        assert any(len(line["upstream_attempts"]) > 1 for line in requests)


def test_owner_down_forks_when_opted_in():
    with emulator_processes(2, *EMULATOR_ARGS) as emulators:
        options = {"balance": "round_robin", "on_owner_down": "fork", "breaker": FAST_BREAKER}
        config = config_file([group([e.url for e in emulators], **options)])
        with shipped_bridge(emulators[0].url, BRIDGE_CONFIG=config, LOG_FORMAT="json") as bridge:
            firsts = ["fork a", "fork b"]
            replies = [
                say(bridge.url, t).json()["choices"][0]["message"]["content"] for t in firsts
            ]
            owners = _owners(emulators, firsts)
            on_dead = next(f for f in firsts if owners[f] == 0)
            emulators[0].kill()
            before = emulators[1].runs()
            answer = _turn_two(bridge.url, on_dead, replies[firsts.index(on_dead)])
            assert answer.status_code == 200, answer.text
            assert emulators[1].runs() == before + 1
            log = bridge.log_lines()
        assert list(lines(log, "conversation_forked"))


def test_redis_shares_ejections_between_two_replicas():
    with (
        running_redis_server() as redis,
        emulator_processes(2, *EMULATOR_ARGS) as emulators,
    ):
        breaker = {"failures": 2, "cooldown": 60.0, "max_cooldown": 60.0}
        config = config_file(
            [group([e.url for e in emulators], balance="round_robin", breaker=breaker)]
        )
        env = {"BRIDGE_CONFIG": config, "BRIDGE_STORE": redis.url}
        with (
            shipped_bridge(emulators[0].url, **env) as first,
            shipped_bridge(emulators[0].url, **env) as second,
        ):
            emulators[0].kill()
            answers = many(6, lambda i: say(first.url, f"first {i}"), workers=1)
            assert [r.status_code for r in answers] == [200] * 6
            assert metric(first.url, "bridge_upstream_ejections_total", upstream="u0") == 1
            time.sleep(1.0)  # > the 0.5 s a replica reuses its view of the shared state
            answers = many(6, lambda i: say(second.url, f"second {i}"), workers=1)
            assert [r.status_code for r in answers] == [200] * 6
            # The second replica never tried the dead upstream: it honoured the ejection.
            assert metric(second.url, "bridge_upstream_failures_total", upstream="u0") == 0
            assert metric(second.url, "bridge_upstream_healthy", upstream="u0") == 0


def test_every_upstream_ejected_answers_503_at_once_and_readyz_names_the_model():
    with emulator_processes(2, *EMULATOR_ARGS) as emulators:
        breaker = {"failures": 1, "cooldown": 60.0, "max_cooldown": 60.0}
        config = config_file([group([e.url for e in emulators], breaker=breaker)])
        with shipped_bridge(emulators[0].url, BRIDGE_CONFIG=config) as bridge:
            assert httpx.get(f"{bridge.url}/readyz", timeout=30).status_code == 200
            for emulator in emulators:
                emulator.kill()
            first = say(bridge.url, "both gone")  # tries both, ejects both
            assert first.status_code == 502
            answer = say(bridge.url, "still gone")
            assert answer.status_code == 503
            assert answer.json()["error"]["code"] == "upstream_unavailable"
            assert int(answer.headers["retry-after"]) >= 30
            # Nothing was tried for the second request: no new failure was counted.
            assert metric(bridge.url, "bridge_upstream_failures_total") == 2
            ready = httpx.get(f"{bridge.url}/readyz", timeout=30)
            assert ready.status_code == 503
            assert "model:o1" in ready.json()["failed"]
            assert "no healthy upstream" in ready.json()["checks"]["models"]["o1"]["detail"]


def test_check_reports_each_upstream(tmp_path):
    import subprocess

    from tests.support.shipped import REPO, _entry_point, clean_env

    with emulator_processes(1, *EMULATOR_ARGS) as (emulator,):
        config = config_file(
            [
                {
                    "id": "o1",
                    "upstreams": [
                        {"dify_url": emulator.url, "app_key": "app-llmchatflow", "name": "good"},
                        {"dify_url": emulator.url, "app_key": "app-not-a-key", "name": "bad"},
                    ],
                }
            ]
        )
        result = subprocess.run(
            [*_entry_point(), "check"],
            env=clean_env(BRIDGE_CONFIG=config, DIFY_API_URL=emulator.url, PYTHONPATH=str(REPO)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    rows = result.stdout.splitlines()
    good = next(row for row in rows if row.startswith("o1 [good]"))
    bad = next(row for row in rows if row.startswith("o1 [bad]"))
    assert "advanced-chat" in good and "ok" in good
    assert "FAIL" in bad
    assert "app-not-a-key" not in result.stdout + result.stderr
    assert result.returncode == 1


def test_previous_response_id_follows_its_conversation_owner():
    with emulator_processes(2, *EMULATOR_ARGS) as emulators:
        config = config_file([group([e.url for e in emulators], balance="round_robin")])
        with shipped_bridge(emulators[0].url, BRIDGE_CONFIG=config) as bridge:

            def respond(text: str, previous: str | None = None) -> httpx.Response:
                body = {"model": "o1", "input": text}
                if previous:
                    body["previous_response_id"] = previous
                return httpx.post(f"{bridge.url}/v1/responses", json=body, timeout=60)

            firsts = ["response a", "response b"]
            ids = [respond(text).json()["id"] for text in firsts]
            owners = _owners(emulators, firsts)
            emulators[0].kill()
            for text, response_id in zip(firsts, ids, strict=True):
                answer = respond(f"next after {text}", response_id)
                if owners[text] == 0:
                    assert answer.status_code == 503, answer.text
                    assert answer.json()["error"]["code"] == "upstream_unavailable"
                    assert "retry-after" in answer.headers
                else:
                    assert answer.status_code == 200, answer.text
