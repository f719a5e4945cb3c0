"""Clients that leave, many clients leaving, and keepalives — through `dify-bridge serve` as
shipped (default settings), in front of the stand-in Dify running as its own process.

`app-silent` sends one `message` and then nothing until it is stopped or the client closes:
a flow step that takes its time.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.shipped.helpers import auth, wait_for

SILENT = {"model": "o1", "messages": [{"role": "user", "content": "hi"}]}


def standin_stats(dify_v1: str) -> dict:
    return httpx.get(f"{dify_v1.removesuffix('/v1')}/_standin/stats", timeout=5).json()


def test_a_client_leaving_mid_stream_stops_the_run(standin_bridge, standin) -> None:
    before = standin_stats(standin)["stops"]
    with httpx.stream(
        "POST",
        f"{standin_bridge.v1}/chat/completions",
        json={**SILENT, "stream": True},
        headers=auth("app-silent"),
        timeout=10,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if '"content"' in line:
                break  # the first content arrived; now leave
    assert wait_for(lambda: standin_stats(standin)["stops"] == before + 1)
    assert wait_for(lambda: standin_stats(standin)["open_streams"] == 0)


def test_a_non_stream_client_giving_up_stops_the_run(standin_bridge, standin) -> None:
    before = standin_stats(standin)["stops"]
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{standin_bridge.v1}/chat/completions",
            json=SILENT,
            headers=auth("app-silent"),
            timeout=httpx.Timeout(10, read=1.0),
        )
    assert wait_for(lambda: standin_stats(standin)["stops"] == before + 1)
    assert wait_for(lambda: standin_stats(standin)["open_streams"] == 0)


def test_two_hundred_clients_leaving_at_once_are_all_stopped(standin_bridge, standin) -> None:
    before = standin_stats(standin)["stops"]
    count = 200

    async def scenario() -> str:
        limits = httpx.Limits(max_connections=count + 10)
        async with httpx.AsyncClient(timeout=20, limits=limits) as client:
            started = asyncio.Event()
            opened = 0

            async def hold() -> None:
                nonlocal opened
                request = client.build_request(
                    "POST",
                    f"{standin_bridge.v1}/chat/completions",
                    json={**SILENT, "stream": True},
                    headers=auth("app-silent"),
                )
                response = await client.send(request, stream=True)
                async for line in response.aiter_lines():
                    if '"content"' in line:
                        break
                opened += 1
                if opened == count:
                    started.set()
                await started.wait()
                await response.aclose()  # everyone leaves at once

            await asyncio.gather(*(hold() for _ in range(count)))
            # A new request is served while the stops go out.
            after = await client.post(
                f"{standin_bridge.v1}/chat/completions",
                json={"model": "o1", "messages": [{"role": "user", "content": "chunks=5"}]},
                headers=auth("app-flood"),
            )
            return after.json()["choices"][0]["message"]["content"]

    assert asyncio.run(scenario()) == "w0 w1 w2 w3 w4 "
    assert wait_for(lambda: standin_stats(standin)["stops"] == before + count, timeout=30)
    assert wait_for(lambda: standin_stats(standin)["open_streams"] == 0, timeout=30)


def test_a_silent_flow_gets_keepalive_comments_at_the_default_interval(
    standin_bridge, standin
) -> None:
    """15 s by default: the test waits for one (bounded), so it is slow by nature."""
    comments = []
    with httpx.stream(
        "POST",
        f"{standin_bridge.v1}/chat/completions",
        json={**SILENT, "stream": True},
        headers=auth("app-silent"),
        timeout=httpx.Timeout(30),
    ) as response:
        for line in response.iter_lines():
            if line.startswith(":"):
                comments.append(line)
                break
    assert comments == [": keepalive"]
