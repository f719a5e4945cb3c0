"""A client that goes away stops the Dify run (the right stop path per mode, body `{"user"}`)
and leaves no upstream connection open — with DEFAULT settings (keepalive 15 s): the engine
watches the ASGI receive channel, it does not wait for a write to fail. Only bounded polls;
no speed claims."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from bridge import create_app, load_settings
from tests.support.servers import serve_in_thread

# app key, query, extra body, the stop path prefix for that mode. The flows sleep in a Code
# node far longer than the polls below wait: a stop seen in time came from the disconnect.
CASES = [
    ("app-slowchat", "hi", {"inputs": {"sleep": 20}}, "/v1/chat-messages/"),  # advanced-chat
    ("app-llmchat", "SLOW one two three four five six seven", {}, "/v1/chat-messages/"),  # chat
    ("app-llmcompletion", "SLOW one two three four five six seven", {}, "/v1/completion-messages/"),
    ("app-slowwf", "hi", {"inputs": {"sleep": 20}}, "/v1/workflows/tasks/"),  # workflow
]
# Modes whose first Dify event can be late (the model's first token): WAIT15 holds it 3 s here.
BEFORE_FIRST_EVENT = [
    ("app-llmchat", "/v1/chat-messages/"),
    ("app-llmcompletion", "/v1/completion-messages/"),
]


def poll(check: Callable[[], object], within: float) -> object:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


@pytest.fixture
def bridge(emulator) -> Iterator[tuple[str, object]]:
    emulator_url, _ = emulator
    env = {"DIFY_API_URL": f"{emulator_url}/v1", "BRIDGE_STORE": "memory://"}
    # Our own transport, so the test can see the bridge's upstream connections.
    transport = httpx.AsyncHTTPTransport()
    app = create_app(load_settings(env=env), dify_transport=transport)
    with serve_in_thread(app) as url:
        yield f"{url}/v1", transport


def journal(emulator_url: str) -> list[dict]:
    return httpx.get(f"{emulator_url}/_emulator/journal").json()


def stops(emulator_url: str) -> list[dict]:
    return [e for e in journal(emulator_url) if e["path"].endswith("/stop")]


def upstream_connections(transport: httpx.AsyncHTTPTransport) -> list:
    """Connections to Dify still carrying a response (idle keep-alive ones do not count)."""
    return [c for c in transport._pool.connections if not (c.is_idle() or c.is_closed())]


@contextlib.contextmanager
def fresh_journal(emulator_url: str) -> Iterator[None]:
    httpx.delete(f"{emulator_url}/_emulator/journal")
    yield


@pytest.mark.parametrize(("key", "query", "extra", "stop_prefix"), CASES)
def test_client_closing_after_the_first_chunk_stops_the_dify_task(emulator, bridge, key, query, extra, stop_prefix):
    emulator_url, emulator_app = emulator
    url, app = bridge
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=30)
    with fresh_journal(emulator_url):
        stream = client.chat.completions.create(
            model="o1", messages=[{"role": "user", "content": query}], stream=True, extra_body=extra
        )
        for chunk in stream:
            delta = chunk.choices[0].delta
            if delta.content or getattr(delta, "reasoning_content", None):
                break
        assert upstream_connections(app)  # the Dify stream is open while the run goes on
        stream.close()
        closed_at = time.monotonic()
        stops = poll(lambda: [e for e in journal(emulator_url) if e["path"].endswith("/stop")], within=1.0)
        stopped_after = time.monotonic() - closed_at
    assert stops, "no stop call reached Dify"
    assert stopped_after <= 1.5
    (stop,) = stops
    run = next(e for e in journal(emulator_url) if e["method"] == "POST" and not e["path"].endswith("/stop"))
    assert stop["path"].startswith(stop_prefix)
    assert stop["json"] == {"user": run["json"]["user"]}
    task_id = stop["path"].removeprefix(stop_prefix).split("/")[0]
    store = emulator_app.state.emulator.store
    # The run ended at the emulator and the bridge holds no open upstream stream.
    assert poll(lambda: task_id not in store.stop_events, within=5.0)
    assert poll(lambda: not upstream_connections(app), within=5.0)


def test_a_finished_run_is_not_stopped(emulator, bridge):
    emulator_url, _ = emulator
    url, app = bridge
    client = openai.OpenAI(base_url=url, api_key="app-llmchat", max_retries=0, timeout=30)
    with fresh_journal(emulator_url):
        text = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(
                model="o1", messages=[{"role": "user", "content": "hello"}], stream=True
            )
        )
        time.sleep(0.3)
        paths = [e["path"] for e in journal(emulator_url)]
    assert text == "Echo: hello"
    assert not any(p.endswith("/stop") for p in paths)
    assert poll(lambda: not upstream_connections(app), within=5.0)


@pytest.mark.parametrize(("key", "query", "extra", "stop_prefix"), CASES)
def test_non_stream_client_that_gives_up_stops_the_run(emulator, bridge, key, query, extra, stop_prefix):
    emulator_url, _ = emulator
    url, app = bridge
    with fresh_journal(emulator_url):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{url}/chat/completions",
                json={"model": "o1", "messages": [{"role": "user", "content": query}], **extra},
                headers={"Authorization": f"Bearer {key}"},
                timeout=httpx.Timeout(30, read=0.8),
            )
        found = poll(lambda: stops(emulator_url), within=3.0)
    assert found and found[0]["path"].startswith(stop_prefix)
    assert poll(lambda: not upstream_connections(app), within=5.0)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
@pytest.mark.parametrize(("key", "stop_prefix"), BEFORE_FIRST_EVENT)
def test_client_leaving_before_the_first_dify_event_stops_the_run_once_it_starts(
    emulator, bridge, key, stop_prefix, stream
):
    # The task id comes with Dify's first event: the bridge waits for it (bounded by the
    # first-event deadline), then stops the run and releases the connection.
    emulator_url, _ = emulator
    url, app = bridge
    with fresh_journal(emulator_url):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{url}/chat/completions",
                json={"model": "o1", "stream": stream, "messages": [{"role": "user", "content": "WAIT15 SLOW a b c d e f"}]},
                headers={"Authorization": f"Bearer {key}"},
                timeout=httpx.Timeout(30, read=0.3),
            )
        assert not stops(emulator_url)  # nothing to stop yet: no task id
        found = poll(lambda: stops(emulator_url), within=15.0)
    assert found and found[0]["path"].startswith(stop_prefix)
    assert poll(lambda: not upstream_connections(app), within=5.0)
