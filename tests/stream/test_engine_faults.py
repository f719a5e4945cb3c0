"""The stream engine against upstreams that misbehave: every fault ends in a prompt
OpenAI-shaped error (an error chunk then `[DONE]` once streaming, a 5xx body otherwise),
logged, never keepalives forever. And every character of a long fast answer arrives in order,
however the engine batches it. Default settings throughout (issue 9)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from bridge import create_app, load_settings
from bridge.dify.sse import EventStreamParser
from tests.support.servers import serve_in_thread
from tests.support.standin import serve_in_thread as serve_standin

CHAT = {"model": "o1", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def standin() -> Iterator[str]:
    with serve_standin() as (url, _stats):
        yield url


@contextlib.contextmanager
def serve_bridge(standin: str) -> Iterator[str]:
    # Logging binds the stderr of the moment: a test that reads the log starts its own bridge.
    env = {"DIFY_API_URL": f"{standin}/v1", "BRIDGE_STORE": "memory://", "LOG_FORMAT": "json"}
    with serve_in_thread(create_app(load_settings(env=env))) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def bridge(standin) -> Iterator[str]:
    with serve_bridge(standin) as url:
        yield url


def sdk(bridge: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=bridge, api_key=key, max_retries=0, timeout=30)


FAULTS = [
    ("app-gzip-bad-start", "decoded"),
    ("app-gzip-bad-mid", "decoded"),
    ("app-nosep", "blank line"),
]


@pytest.mark.parametrize(("key", "says"), FAULTS)
def test_a_broken_upstream_body_ends_the_stream_with_an_error_chunk(standin, key, says, capsys):
    content = ""
    with serve_bridge(standin) as bridge, pytest.raises(openai.APIError) as raised:
        for chunk in sdk(bridge, key).chat.completions.create(**CHAT, stream=True):
            content += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert says in str(raised.value.message)
    assert raised.value.code == "dify_bad_stream"
    if key == "app-gzip-bad-mid":
        assert content == "w0 w1 w2 w3 w4 "  # what decoded fine was delivered
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    (failure,) = [line for line in logged if line["event"] == "run_failed"]
    assert failure["code"] == "dify_bad_stream" and failure["request_id"].startswith("req_")


@pytest.mark.parametrize(("key", "says"), FAULTS)
def test_a_broken_upstream_body_fails_a_non_streaming_request_with_502(bridge, key, says):
    response = httpx.post(f"{bridge}/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "dify_bad_stream" and error["type"] == "server_error"
    assert says in error["message"]
    assert response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize("stream", [True, False])
def test_an_html_page_with_status_200_is_reported_as_such(bridge, stream):
    response = httpx.post(
        f"{bridge}/chat/completions", json={**CHAT, "stream": stream}, headers={"Authorization": "Bearer app-html"}, timeout=30
    )
    assert response.status_code == 502
    assert "HTML page instead of an event stream" in response.json()["error"]["message"]


def test_an_unexpected_exception_while_reading_becomes_an_error_chunk(standin, monkeypatch, capsys):
    real_feed = EventStreamParser.feed

    def feed(self, data: bytes):
        # Far into the answer (~600 KB in): past the first network read, so the run has
        # started and its task id is known when the bug hits.
        if b"w4000 " in data:
            raise RuntimeError("a bug in the engine")
        return real_feed(self, data)

    monkeypatch.setattr(EventStreamParser, "feed", feed)
    body = {**CHAT, "messages": [{"role": "user", "content": "chunks=5000"}]}
    with serve_bridge(standin) as bridge:
        with pytest.raises(openai.APIError) as raised:
            for _ in sdk(bridge, "app-flood").chat.completions.create(**body, stream=True):
                pass
        assert raised.value.code == "internal_error"
        auth = {"Authorization": "Bearer app-flood"}
        response = httpx.post(f"{bridge}/chat/completions", json=body, headers=auth, timeout=30)
        assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    err = capsys.readouterr().err
    # Caught by the reader (before Dify's first event was noted) or by the relay's
    # translation, depending on how the bytes were batched: either way logged with the trace.
    crashes = [
        json.loads(line)
        for line in err.splitlines()
        if '"dify_translation_failed"' in line or '"dify_reader_failed"' in line
    ]
    assert len(crashes) == 2  # the stream and the non-streaming request
    assert all("a bug in the engine" in c["exception"] and c["request_id"].startswith("req_") for c in crashes)
    # The bridge gave up on both runs: Dify is told to stop them (issue 17 item 2).
    stops = [json.loads(line) for line in err.splitlines() if '"dify_task_stopped"' in line]
    assert [stop["reason"] for stop in stops] == ["internal_error", "internal_error"]


def test_every_character_of_a_100000_chunk_answer_arrives_in_order(bridge):
    body = {**CHAT, "stream": True, "messages": [{"role": "user", "content": "chunks=100000"}]}
    parts: list[str] = []
    chunks = 0
    with httpx.stream("POST", f"{bridge}/chat/completions", json=body, headers={"Authorization": "Bearer app-flood"}, timeout=120) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                chunks += 1
                parts.append(json.loads(line[6:])["choices"][0]["delta"].get("content") or "" if "choices" in line else "")
    assert "".join(parts) == "".join(f"w{i} " for i in range(100_000))
    assert chunks < 100_000  # what was buffered went out merged
