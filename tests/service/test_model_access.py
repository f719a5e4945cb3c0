"""Who may read what (issue 17 items 6-7): once bridge keys exist, the model list, the index
page's models and `/metrics` need a key like a chat does (a scraper may use its own
`BRIDGE_METRICS_KEY`); `GET /v1/models/{id}` says 404 for a model that does not exist."""

from __future__ import annotations

import httpx
import pytest

from tests.service.conftest import BRIDGE_KEY, make_bridge
from tests.support.servers import serve_in_thread

METRICS_KEY = "scrape-only-key-0123456789"
# A client's own Dify app key (passthrough): not one the bridge holds.
CLIENT_APP_KEY = "app-llmchatflow"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    return error


@pytest.fixture(scope="module")
def keyed(emulator_url: str):
    app = make_bridge(f"{emulator_url}/v1", metrics_key=METRICS_KEY, aliases={"gpt-4o": "o1"})
    with serve_in_thread(app) as url:
        yield url


# ---------------------------------------------------------------- with bridge keys


@pytest.mark.parametrize("path", ["/v1/models", "/models", "/v1/models/o1"])
@pytest.mark.parametrize("key", [None, "sk-wrong-key-0000", METRICS_KEY])
def test_models_need_a_bridge_key_once_keys_exist(keyed: str, path: str, key: str | None) -> None:
    response = httpx.get(f"{keyed}{path}", headers=bearer(key) if key else {})
    assert_openai_error(response, 401, "invalid_api_key")
    assert "o1" not in response.text and METRICS_KEY not in response.text


def test_models_are_listed_with_a_bridge_key(keyed: str) -> None:
    listed = httpx.get(f"{keyed}/v1/models", headers=bearer(BRIDGE_KEY))
    assert listed.status_code == 200
    assert {m["id"] for m in listed.json()["data"]} == {"o1", "slow", "gpt-4o"}


def test_the_index_page_names_no_model_without_a_key(keyed: str) -> None:
    anonymous = httpx.get(f"{keyed}/").json()
    assert "models" not in anonymous and anonymous["api_key_required"] is True
    assert "o1" not in str(anonymous)
    assert httpx.get(f"{keyed}/", headers=bearer(BRIDGE_KEY)).json()["models"] == [
        "o1",
        "slow",
        "gpt-4o",
    ]


@pytest.mark.parametrize("key", [None, "sk-wrong-key-0000", CLIENT_APP_KEY])
def test_metrics_need_a_bridge_key_or_the_metrics_key(keyed: str, key: str | None) -> None:
    response = httpx.get(f"{keyed}/metrics", headers=bearer(key) if key else {})
    assert_openai_error(response, 401, "invalid_api_key")
    assert "bridge_" not in response.text


@pytest.mark.parametrize("key", [BRIDGE_KEY, METRICS_KEY])
def test_metrics_are_served_to_a_bridge_key_or_the_metrics_key(keyed: str, key: str) -> None:
    response = httpx.get(f"{keyed}/metrics", headers=bearer(key))
    assert response.status_code == 200
    assert "bridge_http_requests_total" in response.text


def test_the_metrics_key_grants_nothing_else(keyed: str) -> None:
    chat = httpx.post(
        f"{keyed}/v1/chat/completions",
        headers=bearer(METRICS_KEY),
        json={"model": "o1", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert_openai_error(chat, 401, "invalid_api_key")


def test_a_metrics_key_alone_closes_metrics(emulator_url: str) -> None:
    app = make_bridge(f"{emulator_url}/v1", api_keys=[], metrics_key=METRICS_KEY)
    with serve_in_thread(app) as url:
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert httpx.get(f"{url}/metrics", headers=bearer(METRICS_KEY)).status_code == 200
        # No bridge keys: the models stay open, as the chats are.
        assert httpx.get(f"{url}/v1/models").status_code == 200


# ---------------------------------------------------------------- GET /v1/models/{id}


@pytest.mark.parametrize("model", ["o1", "slow", "gpt-4o"])
def test_a_configured_or_aliased_model_exists(keyed: str, model: str) -> None:
    response = httpx.get(f"{keyed}/v1/models/{model}", headers=bearer(BRIDGE_KEY))
    assert response.status_code == 200
    assert response.json()["id"] == model and response.json()["object"] == "model"


@pytest.mark.parametrize("path", ["nope", "%00%ff%fe", "x" * 2000])
def test_an_unknown_model_is_a_404_model_not_found(keyed: str, path: str) -> None:
    response = httpx.get(f"{keyed}/v1/models/{path}", headers=bearer(BRIDGE_KEY))
    error = assert_openai_error(response, 404, "model_not_found")
    assert error["param"] == "model" and len(error["message"]) < 200


def test_a_default_model_does_not_make_unknown_names_exist(emulator_url: str) -> None:
    app = make_bridge(f"{emulator_url}/v1", default_model="o1")
    with serve_in_thread(app) as url:
        headers = bearer(BRIDGE_KEY)
        assert httpx.get(f"{url}/v1/models/o1", headers=headers).status_code == 200
        assert httpx.get(f"{url}/v1/models/nope", headers=headers).status_code == 404


def test_pure_passthrough_answers_for_the_callers_own_app(emulator_url: str) -> None:
    # No bridge keys, no managed models: the caller's `app-…` key picks the Dify app and any
    # name reaches it, so for that caller every well-formed name exists; without a key only
    # the listed name does.
    app = make_bridge(f"{emulator_url}/v1", api_keys=[], models=[])
    with serve_in_thread(app) as url:
        listed = httpx.get(f"{url}/v1/models")
        assert listed.status_code == 200
        assert [m["id"] for m in listed.json()["data"]] == ["o1"]
        assert httpx.get(f"{url}/v1/models/o1").status_code == 200
        assert httpx.get(f"{url}/v1/models/my-flow").status_code == 404
        own = bearer(CLIENT_APP_KEY)
        assert httpx.get(f"{url}/v1/models/my-flow", headers=own).json()["id"] == "my-flow"
        assert httpx.get(f"{url}/v1/models/%00%ff", headers=own).status_code == 404
        assert httpx.get(f"{url}/v1/models/{'x' * 300}", headers=own).status_code == 404


@pytest.mark.parametrize("model", ["o1\n", "o\x00", "x" * 257], ids=["newline", "nul", "257"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/completions"])
def test_an_absurd_model_name_is_a_400_on_every_answer_route(
    keyed: str, path: str, model: str
) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "input": "hi"}
    if path == "/v1/completions":
        body = {"model": model, "prompt": "hi"}
    response = httpx.post(f"{keyed}{path}", headers=bearer(BRIDGE_KEY), json=body)
    error = assert_openai_error(response, 400, "invalid_model_name")
    assert error["param"] == "model" and response.headers["x-should-retry"] == "false"


def test_a_model_name_of_256_characters_is_served(keyed: str) -> None:
    # The bound is not a reason to refuse real ids: 256 characters still reach the app
    # (an unknown managed name is then the usual 404).
    response = httpx.post(
        f"{keyed}/v1/chat/completions",
        headers=bearer(BRIDGE_KEY),
        json={"model": "x" * 256, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert_openai_error(response, 404, "model_not_found")
