"""The HTTP surface around the bodies (issue 14 items 8 and 9): Dify's headers on every
response, /v1/site (16b), /v1/meta tool icons, 404/405 pages, conversation names, and inputs
stored as Dify stores them."""

from __future__ import annotations

import httpx
import pytest

from tests.emulator.sse import events
from tests.emulator.test_conformance import replay
from tests.support.recordings import load

CAT, ECHO, AGENT_TOOL = "app-cat-llm", "app-echochat", "app-llmagenttool"
DIFY_HEADERS = (
    "access-control-allow-origin",
    "access-control-expose-headers",
    "x-version",
    "x-env",
    "vary",
)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    ("rec_id", "key"),
    [("01", CAT), ("10", None), ("14a", CAT), ("12a", CAT), ("07b", "app-wf-upper")],
)
def test_every_response_carries_difys_headers(client: httpx.Client, rec_id: str, key) -> None:
    response = replay(client, load(rec_id), key)
    recorded = load(rec_id).headers
    for name in DIFY_HEADERS:
        assert response.headers[name] == recorded[name], name


def test_16b_site(client: httpx.Client) -> None:
    response = replay(client, load("16b"), CAT)
    assert response.status_code == 200
    assert response.json() == load("16b").json
    assert list(response.json()) == list(load("16b").json)


def test_16_meta_without_tools_is_empty(client: httpx.Client) -> None:
    assert replay(client, load("16-meta"), CAT).json() == {"tool_icons": {}}


def test_meta_lists_a_builtin_tools_icon(client: httpx.Client, emulator_url: str) -> None:
    icons = client.get("/v1/meta", headers=_auth(AGENT_TOOL)).json()["tool_icons"]
    assert icons == {
        "current_time": f"{emulator_url}/console/api/workspaces/current/tool-provider/builtin/time/icon"
    }


def test_unknown_route_is_flasks_404_page(client: httpx.Client) -> None:
    response = client.get("/v1/no-such-thing", headers=_auth(CAT))
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>404 Not Found</title>" in response.text
    assert response.headers["x-version"] == "1.13.2"


def test_wrong_method_is_a_405_dify_error(client: httpx.Client) -> None:
    response = client.get("/v1/chat-messages", headers=_auth(CAT))
    assert response.status_code == 405
    assert response.json() == {
        "code": "method_not_allowed",
        "message": "The method is not allowed for the requested URL.",
        "status": 405,
    }


def _conversation(client: httpx.Client, key: str, user: str, conversation_id: str) -> dict:
    listed = client.get("/v1/conversations", params={"user": user}, headers=_auth(key)).json()
    return next(c for c in listed["data"] if c["id"] == conversation_id)


def test_blocking_first_turn_names_the_conversation_after_20_characters(
    client: httpx.Client,
) -> None:
    body = {
        "inputs": {},
        "query": "Tell me everything about cats\nand dogs",
        "response_mode": "blocking",
        "user": "namer",
    }
    reply = client.post("/v1/chat-messages", json=body, headers=_auth(CAT)).json()
    conversation = _conversation(client, CAT, "namer", reply["conversation_id"])
    assert conversation["name"] == "Tell me everything a…"


def test_streamed_first_turn_name_is_one_line(client: httpx.Client) -> None:
    body = {"inputs": {}, "query": "Hello\ncat", "response_mode": "streaming", "user": "namer"}
    text = client.post("/v1/chat-messages", json=body, headers=_auth(CAT)).text
    conversation_id = events(text)[-1]["conversation_id"]
    assert _conversation(client, CAT, "namer", conversation_id)["name"] == "Hello cat"


def test_optional_inputs_not_sent_are_stored_as_null(client: httpx.Client) -> None:
    body = {
        "inputs": {"system_prompt": "be brief", "undeclared": "dropped"},
        "query": "hi",
        "response_mode": "blocking",
        "user": "inputs-user",
    }
    reply = client.post("/v1/chat-messages", json=body, headers=_auth(ECHO)).json()
    stored = {"system_prompt": "be brief", "tone": None}
    conversation = _conversation(client, ECHO, "inputs-user", reply["conversation_id"])
    assert conversation["inputs"] == stored
    (message,) = client.get(
        "/v1/messages",
        params={"conversation_id": reply["conversation_id"], "user": "inputs-user"},
        headers=_auth(ECHO),
    ).json()["data"]
    assert message["inputs"] == stored
