"""Clients that leave while Dify floods, and a thousand that leave at once (issue 9), against
the fast Dify stand-in (tests/support/standin.py) with the bridge's DEFAULT settings.

The stand-in, not the emulator: it counts every stop exactly (the emulator's journal is
bounded) and holds a thousand streams for next to nothing, so what is measured is the bridge.
Bounded polls only; no speed claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from bridge import create_app, load_settings
from tests.support.servers import serve_in_thread
from tests.support.standin import Stats
from tests.support.standin import serve_in_thread as serve_standin
from tests.support.stream_clients import chat_request, hold_streams

HELD = 1000


def poll(check: Callable[[], object], within: float) -> object:
    deadline = time.monotonic() + within
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[str, Stats]]:
    with serve_standin() as served:
        yield served


def serve_bridge(standin_url: str, **settings) -> contextlib.AbstractContextManager[str]:
    env = {"DIFY_API_URL": f"{standin_url}/v1", "BRIDGE_STORE": "memory://", "LOG_LEVEL": "warning"}
    return serve_in_thread(create_app(load_settings(env=env, **settings)))


@pytest.fixture(scope="module")
def bridge(standin) -> Iterator[str]:
    # The stand-in's count of open streams is the upstream connections the bridge still holds.
    with serve_bridge(standin[0]) as url:
        yield url


def test_client_leaving_a_flood_stops_the_run_and_frees_the_connection(standin, bridge):
    url = bridge
    _, stats = standin
    stops_before, streams_before = stats.stops, stats.streams
    body = {
        "model": "o1",
        "stream": True,
        "messages": [{"role": "user", "content": "chunks=200000"}],
    }
    received = 0
    with httpx.stream(
        "POST",
        f"{url}/v1/chat/completions",
        json=body,
        headers={"Authorization": "Bearer app-flood"},
        timeout=30,
    ) as r:
        for data in r.iter_raw():
            received += len(data)
            if received > 40_000:
                break
    assert stats.streams == streams_before + 1
    assert poll(lambda: stats.stops == stops_before + 1, within=5.0), "no stop call reached Dify"
    assert poll(lambda: stats.open_streams == 0, within=5.0)


def test_a_thousand_clients_leaving_at_once_are_all_stopped_and_new_requests_still_served(
    standin, bridge
):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # client, bridge-side, upstream and stand-in sockets for each held stream, in this process
    if hard < 4 * HELD + 500:
        pytest.skip(f"needs {4 * HELD + 500} file descriptors, the limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4 * HELD + 500), hard))
    url = bridge
    _, stats = standin
    stops_before = stats.stops
    port = int(url.rsplit(":", 1)[1])

    async def scenario() -> None:
        writers = await hold_streams(port, HELD)
        assert stats.open_streams >= HELD
        for writer in writers:  # all at once
            writer.transport.abort()

    asyncio.run(scenario())
    # Meanwhile the bridge answers a new request at once (a generous bound, not a speed claim).
    body = {"model": "o1", "messages": [{"role": "user", "content": "chunks=5"}]}
    answer = httpx.post(
        f"{url}/v1/chat/completions",
        json=body,
        headers={"Authorization": "Bearer app-flood"},
        timeout=10,
    )
    assert answer.json()["choices"][0]["message"]["content"] == "w0 w1 w2 w3 w4 "
    assert poll(lambda: stats.stops - stops_before >= HELD, within=60.0), (
        f"{stats.stops - stops_before} of {HELD} stop calls reached Dify"
    )
    assert poll(lambda: stats.open_streams == 0, within=30.0)


def test_stops_never_wait_behind_streams_for_a_connection(standin):
    # A full stream pool with more streams queued for it: the leavers' slots go to the queue,
    # and their stop calls still go out, on the control pool.
    standin_url, stats = standin
    stops_before = stats.stops
    with serve_bridge(standin_url, upstream_connections=3) as url:
        port = int(url.rsplit(":", 1)[1])

        async def scenario() -> None:
            held = await hold_streams(port, 3)
            queued = []
            for _ in range(3):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(chat_request("app-silent", "queued"))
                queued.append(writer)
            await asyncio.sleep(0.5)  # the queued requests wait for a stream connection
            for writer in held:
                writer.transport.abort()
            stopped = await asyncio.to_thread(poll, lambda: stats.stops - stops_before >= 3, 30.0)
            for writer in queued:
                writer.transport.abort()
            assert stopped, f"{stats.stops - stops_before} of 3 stop calls reached Dify"

        asyncio.run(scenario())
