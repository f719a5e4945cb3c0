"""Per-key limits (issue 13): concurrent streams and requests per minute, refused with an
OpenAI-shaped 429 and Retry-After, counted in metrics, shared across replicas through Redis."""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bridge.settings import ConfigError, load_settings
from tests.scaling.conftest import SLOW_APP_KEY, bridge_in_thread
from tests.support.redis_server import RedisServer

OTHER_KEY = "app-cat-llm"
BRIDGE_KEY = "sk-limits-test"


def sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def ask(url: str, key: str, text: str = "hi", *, model: str = "any") -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": text}], "user": "u"},
        timeout=30,
    )


@contextlib.contextmanager
def open_stream(url: str, key: str) -> Iterator[httpx.Response]:
    """A slow stream that has started (its first frame arrived) and is still running."""
    body = {
        "model": "any",
        "stream": True,
        "messages": [{"role": "user", "content": "SLOW " + " ".join(["word"] * 40)}],
        "user": "u",
    }
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            f"{url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json=body,
        ) as response,
    ):
        assert response.status_code == 200
        # Keep the iterator: closing it (when collected) would close the response.
        lines = response.iter_lines()
        next(lines)
        yield response
        lines.close()


def rate_limited_count(url: str, limit: str, key: str = "default") -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    pattern = rf'^bridge_rate_limited_total\{{(?=[^}}]*limit="{limit}")(?=[^}}]*key="{key}")[^}}]*\}} (\S+)$'
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["type"] == "requests"
    assert set(error) == {"message", "type", "param", "code"}
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert "x-should-retry" not in response.headers  # the SDKs retry after Retry-After


def limits(**default: Any) -> dict[str, Any]:
    return {"limits": {"default": default}}


def test_concurrent_streams_beyond_the_limit_get_429_until_one_ends(emulator_api: str) -> None:
    with bridge_in_thread(emulator_api, **limits(concurrent_streams=2)) as url:
        before = rate_limited_count(url, "concurrent_streams")
        with open_stream(url, SLOW_APP_KEY), open_stream(url, SLOW_APP_KEY):
            refused = ask(url, SLOW_APP_KEY)
            # Another key has slots of its own.
            assert ask(url, OTHER_KEY).status_code == 200
        assert_rate_limited(refused)
        assert refused.headers["retry-after"] == "1"
        assert rate_limited_count(url, "concurrent_streams") == before + 1
        # The slots were given back when the streams ended (here: the client went away).
        assert ask(url, SLOW_APP_KEY).status_code == 200


def test_requests_per_minute_are_counted_per_key(emulator_api: str) -> None:
    with bridge_in_thread(emulator_api, **limits(requests_per_minute=3)) as url:
        before = rate_limited_count(url, "requests_per_minute")
        assert [ask(url, SLOW_APP_KEY).status_code for _ in range(3)] == [200] * 3
        refused = ask(url, SLOW_APP_KEY)
        assert_rate_limited(refused)
        assert ask(url, OTHER_KEY).status_code == 200
        assert rate_limited_count(url, "requests_per_minute") == before + 1
        # Not a generation endpoint: never limited.
        assert (
            httpx.get(
                f"{url}/v1/models", headers={"Authorization": f"Bearer {SLOW_APP_KEY}"}
            ).status_code
            == 200
        )


def test_a_key_listed_by_its_hash_gets_its_own_limit_and_metric_label(emulator_api: str) -> None:
    config = {
        "limits": {
            "default": {"requests_per_minute": 100},
            "keys": [{"key_sha256": sha256(OTHER_KEY), "name": "team-a", "requests_per_minute": 1}],
        }
    }
    with bridge_in_thread(emulator_api, **config) as url:
        before = rate_limited_count(url, "requests_per_minute", key="team-a")
        assert ask(url, OTHER_KEY).status_code == 200
        assert_rate_limited(ask(url, OTHER_KEY))
        assert ask(url, SLOW_APP_KEY).status_code == 200
        assert rate_limited_count(url, "requests_per_minute", key="team-a") == before + 1


def test_bridge_keys_are_limited_and_wrong_keys_are_not_counted(emulator_api: str) -> None:
    settings = {
        "api_keys": [BRIDGE_KEY],
        "passthrough": False,
        "models": [{"id": "llm", "app_key": SLOW_APP_KEY}],
        **limits(requests_per_minute=1),
    }
    with bridge_in_thread(emulator_api, **settings) as url:
        for _ in range(3):
            assert ask(url, "sk-wrong", model="llm").status_code == 401
        assert ask(url, BRIDGE_KEY, model="llm").status_code == 200
        assert_rate_limited(ask(url, BRIDGE_KEY, model="llm"))


def test_limits_hold_across_replicas_sharing_redis(
    emulator_api: str, redis_server: RedisServer
) -> None:
    settings = {"store": redis_server.url, **limits(concurrent_streams=1, requests_per_minute=3)}
    with (
        bridge_in_thread(emulator_api, **settings) as first,
        bridge_in_thread(emulator_api, **settings) as second,
    ):
        with open_stream(first, SLOW_APP_KEY):
            assert_rate_limited(ask(second, SLOW_APP_KEY))
        # The first replica gave its slot back in Redis; the window holds 1 of 3 so far.
        assert ask(second, SLOW_APP_KEY).status_code == 200
        assert ask(first, SLOW_APP_KEY).status_code == 200
        refused = ask(second, SLOW_APP_KEY)
        assert_rate_limited(refused)
        assert "requests per minute" in refused.json()["error"]["message"]


def test_a_dead_redis_lets_requests_through(emulator_api: str, redis_server: RedisServer) -> None:
    settings = {"store": redis_server.url, **limits(concurrent_streams=1, requests_per_minute=1)}
    with bridge_in_thread(emulator_api, **settings) as url:
        assert ask(url, SLOW_APP_KEY).status_code == 200
        redis_server.stop()
        statuses = [ask(url, SLOW_APP_KEY).status_code for _ in range(2)]
    assert statuses == [200, 200]


def test_simultaneous_requests_never_exceed_the_concurrency_limit(
    emulator_api: str, redis_server: RedisServer
) -> None:
    settings = {"store": redis_server.url, **limits(concurrent_streams=3)}
    statuses: list[int] = []
    with (
        bridge_in_thread(emulator_api, **settings) as first,
        bridge_in_thread(emulator_api, **settings) as second,
    ):
        barrier = threading.Barrier(10)

        def slow_request(n: int) -> None:
            barrier.wait(timeout=10)
            response = ask([first, second][n % 2], SLOW_APP_KEY, "SLOW a b c d e f g h")
            statuses.append(response.status_code)

        threads = [threading.Thread(target=slow_request, args=(n,)) for n in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    # Each request lasts seconds, far longer than the spread of their arrivals.
    assert sorted(statuses) == [200] * 3 + [429] * 7


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"default": {"concurrent_streams": 0}}, "limits.default"),
        ({"keys": [{"key_sha256": "not-a-hash", "requests_per_minute": 1}]}, "limits.keys[0]"),
        ({"default": {"requests_per_second": 1}}, "limits.default"),
    ],
)
def test_a_wrong_limits_section_is_a_config_error_naming_the_field(
    section: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(env={}, limits=section)


def test_no_limits_configured_means_no_middleware() -> None:
    settings = load_settings(env={})
    assert not settings.limits.enabled
