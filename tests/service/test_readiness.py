"""`/readyz`: Dify answers and every managed key is accepted; 503 naming the failed check."""

from __future__ import annotations

import httpx

from tests.service.conftest import BAD_KEY, BRIDGE_KEY, CAT_KEY, make_bridge
from tests.support.servers import free_port, serve_in_thread

# The checks are shown to a caller who may list the models (the bridges here have keys).
KEYED = {"Authorization": f"Bearer {BRIDGE_KEY}"}


def test_ready_when_dify_answers_and_keys_are_accepted(emulator_url):
    with serve_in_thread(make_bridge(f"{emulator_url}/v1")) as url:
        response = httpx.get(f"{url}/readyz", headers=KEYED)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["failed"] == []
    assert set(body["checks"]["models"]) == {"o1", "slow"}


def test_not_ready_when_a_managed_key_is_rejected(emulator_url):
    models = [{"id": "o1", "app_key": CAT_KEY}, {"id": "broken", "app_key": BAD_KEY}]
    with serve_in_thread(make_bridge(f"{emulator_url}/v1", models=models)) as url:
        response = httpx.get(f"{url}/readyz", headers=KEYED)
    assert response.status_code == 503
    assert response.json()["failed"] == ["model:broken"]
    assert BAD_KEY not in response.text and CAT_KEY not in response.text


def test_not_ready_when_dify_is_down():
    closed = f"http://127.0.0.1:{free_port()}/v1"
    with serve_in_thread(make_bridge(closed)) as url:
        ready = httpx.get(f"{url}/readyz", headers=KEYED)
        alive = httpx.get(f"{url}/healthz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"
    assert "dify" in ready.json()["failed"]
    assert alive.status_code == 200


def test_readiness_is_cached_between_probes(emulator_url):
    with serve_in_thread(make_bridge(f"{emulator_url}/v1", ready_cache_ttl=60)) as url:
        httpx.delete(f"{emulator_url}/_emulator/journal")
        for _ in range(3):
            assert httpx.get(f"{url}/readyz").status_code == 200
        journal = httpx.get(f"{emulator_url}/_emulator/journal").json()
    assert len([e for e in journal if e["path"].endswith("/info")]) == 3  # dify + 2 keys, once


def test_without_a_key_the_status_names_no_model_and_no_url(emulator_url):
    models = [{"id": "o1", "app_key": CAT_KEY}, {"id": "broken", "app_key": BAD_KEY}]
    with serve_in_thread(make_bridge(f"{emulator_url}/v1", models=models)) as url:
        response = httpx.get(f"{url}/readyz")
    assert response.status_code == 503  # probes send no key and still see the verdict
    body = response.json()
    assert body["status"] == "not_ready"
    assert "broken" not in response.text and emulator_url not in response.text
