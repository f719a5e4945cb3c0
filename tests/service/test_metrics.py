"""`/metrics`: Litestar's HTTP series plus the bridge's chat series, with bounded labels."""

from __future__ import annotations

import json

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from tests.service.conftest import BRIDGE_KEY, make_bridge
from tests.support.servers import serve_in_thread


def scrape(url: str, key: str = BRIDGE_KEY) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {key}"}).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_streamed_request_is_counted_with_its_ttft_and_duration(emulator_url):
    with serve_in_thread(make_bridge(f"{emulator_url}/v1")) as url:
        before = scrape(url)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=BRIDGE_KEY)
        for _ in client.chat.completions.create(
            model="o1", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            pass
        after = scrape(url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("bridge_chat_requests_total", model="o1", status="200") == 1
    assert grew("bridge_chat_ttft_seconds_count", model="o1", stream="true") == 1
    assert grew("bridge_chat_duration_seconds_count", model="o1", stream="true") == 1
    assert value(after, "bridge_active_streams") == 0
    http_labels = {
        "app_name": "dify-openai-bridge",
        "method": "POST",
        "path": "/v1/chat/completions",
        "status_code": "200",
    }
    assert grew("bridge_http_requests_total", **http_labels) == 1


def test_model_ids_only_a_passthrough_client_knows_share_one_label(emulator_url):
    with serve_in_thread(make_bridge(f"{emulator_url}/v1", passthrough=True)) as url:
        before = scrape(url)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="app-llmchatflow")
        for model in ("made-up-1", "made-up-2"):
            client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )
        after = scrape(url)
    grown = value(after, "bridge_chat_requests_total", model="passthrough", status="200") - value(
        before, "bridge_chat_requests_total", model="passthrough", status="200"
    )
    assert grown == 2
    assert not any("made-up" in str(labels) for _, labels in after)


def test_dify_rejecting_a_key_is_counted_as_an_upstream_error(emulator_url):
    with serve_in_thread(make_bridge(f"{emulator_url}/v1", passthrough=True)) as url:
        before = scrape(url)
        response = httpx.post(
            f"{url}/v1/chat/completions",
            headers={"Authorization": "Bearer app-no-such-app-key-999"},
            json={"model": "x", "messages": [{"role": "user", "content": "hi"}]},
        )
        after = scrape(url)
    assert response.status_code == 401
    errors = {
        labels: v - before.get((name, labels), 0.0)
        for (name, labels), v in after.items()
        if name == "bridge_upstream_errors_total"
    }
    assert sum(errors.values()) >= 1


def test_a_stream_that_fails_inside_dify_counts_its_error_code(emulator_url):
    with serve_in_thread(make_bridge(f"{emulator_url}/v1", passthrough=True)) as url:
        before = scrape(url)
        with httpx.stream(
            "POST",
            f"{url}/v1/chat/completions",
            headers={"Authorization": "Bearer app-failchat"},
            json={"model": "x", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        ) as response:
            frames = [line for line in response.iter_lines() if line.startswith("data: {")]
        after = scrape(url)
    code = next(json.loads(f[6:])["error"]["code"] for f in frames if '"error"' in f)
    grown = value(after, "bridge_upstream_errors_total", code=code) - value(
        before, "bridge_upstream_errors_total", code=code
    )
    assert grown == 1
