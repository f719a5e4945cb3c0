"""The emulator's console API against the Dify 1.13.2 console recordings: same status, same
body (byte for byte where nothing in it is instance-specific), same cookie names/attributes."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from bridge.emulator import create_emulator_app
from tests.support.recordings import load

from .conftest import CAT_DSL
from .recorded import body, raw_headers

EMAIL, PASSWORD = "admin@example.com", "Passw0rd-123"
RECORDED_APP = "13bede26-15c7-4bac-a211-175e91ec4b43"  # the app id inside 07c/09d's messages


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_emulator_app()) as client:
        assert (
            client.post(
                "/console/api/setup", json={"email": EMAIL, "name": "admin", "password": PASSWORD}
            ).status_code
            == 201
        )
        yield client


@pytest.fixture
def session(client: TestClient) -> TestClient:
    response = client.post("/console/api/login", json={"email": EMAIL, "password": _b64(PASSWORD)})
    assert response.status_code == 200
    client.headers["X-CSRF-Token"] = client.cookies["csrf_token"]
    return client


def _attributes(cookie: str) -> set[str]:
    return {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]} - {"expires"}


def _same(response, name: str) -> None:
    recording = load(f"console/{name}")
    assert response.status_code == recording.status
    assert response.content == recording.body


def _same_but(response, name: str, *ignored: str) -> dict:
    recorded = body(name)
    got = response.json()
    assert response.status_code == load(f"console/{name}").status
    assert set(got) == set(recorded)
    assert {k: v for k, v in got.items() if k not in ignored} == {
        k: v for k, v in recorded.items() if k not in ignored
    }
    return got


def _import(session: TestClient, text: str):
    return session.post(
        "/console/api/apps/imports", json={"mode": "yaml-content", "yaml_content": text}
    )


def test_setup_and_init(client: TestClient) -> None:
    status = client.get("/console/api/setup")
    assert status.json()["step"] == "finished" and set(status.json()) == set(body("01a"))
    _same(client.get("/console/api/init"), "01b")
    _same(
        client.post(
            "/console/api/setup", json={"email": EMAIL, "name": "admin", "password": PASSWORD}
        ),
        "02a",
    )
    _same(
        client.post(
            "/console/api/setup",
            json={"email": "not-an-email", "name": "admin", "password": "short"},
        ),
        "02b",
    )


def test_fresh_instance_wants_setup() -> None:
    with TestClient(create_emulator_app()) as client:
        assert client.get("/console/api/setup").json() == {"step": "not_started", "setup_at": None}
        refused = client.post(
            "/console/api/login", json={"email": EMAIL, "password": _b64(PASSWORD)}
        )
        assert refused.status_code == 401 and refused.json()["code"] == "not_setup"


def test_login(client: TestClient) -> None:
    wrong = client.post(
        "/console/api/login",
        json={"email": EMAIL, "password": "V3JvbmdQYXNzOTk5", "remember_me": True},
    )
    _same(wrong, "03a")
    assert wrong.headers["www-authenticate"] == 'Bearer realm="api"'
    _same(client.post("/console/api/login", json={"email": EMAIL, "password": PASSWORD}), "03b")
    ok = client.post("/console/api/login", json={"email": EMAIL, "password": _b64(PASSWORD)})
    _same(ok, "03c")
    recorded = [v for k, v in raw_headers("03c") if k == "Set-Cookie"]
    got = ok.headers.get_list("set-cookie")
    assert [c.split("=")[0] for c in got] == [c.split("=")[0] for c in recorded]
    for mine, theirs in zip(got, recorded, strict=True):
        assert _attributes(mine) == _attributes(theirs)
        assert ("Max-Age=3600" in mine) == ("Max-Age=3600" in theirs)


def test_login_lockout_after_too_many_wrong_passwords(client: TestClient) -> None:
    for _ in range(6):
        client.post("/console/api/login", json={"email": EMAIL, "password": _b64("nope")})
    locked = client.post("/console/api/login", json={"email": EMAIL, "password": _b64(PASSWORD)})
    assert locked.status_code == 429 and locked.json()["code"] == "email_code_login_limit"


def test_csrf_rules(session: TestClient) -> None:
    assert session.get("/console/api/apps?page=1&limit=20").status_code == 200  # 04a
    csrf = session.headers.pop("X-CSRF-Token")
    _same(session.get("/console/api/apps?page=1&limit=20"), "04b")
    access = session.cookies["access_token"]
    session.cookies.clear()
    _same(session.get("/console/api/apps?page=1&limit=20"), "04c")
    bearer = session.get(
        "/console/api/apps?page=1&limit=1",
        headers={
            "Authorization": f"Bearer {access}",
            "X-CSRF-Token": csrf,
            "Cookie": f"csrf_token={csrf}",
        },
    )
    assert bearer.status_code == 200  # 04d
    header_only = session.get(
        "/console/api/apps?page=1&limit=1",
        headers={"X-CSRF-Token": csrf, "Cookie": f"access_token={access}"},
    )
    _same(header_only, "04e")


def test_import_outcomes(session: TestClient) -> None:
    cat = CAT_DSL.read_text()
    _same_but(_import(session, cat), "05a", "id", "app_id")
    for name in ("06a", "06b", "06f", "06g"):
        _same_but(
            _import(session, load(f"console/{name}").request_json["yaml_content"]), name, "id"
        )
    _same(
        session.post(
            "/console/api/apps/imports", json={"mode": "yaml", "yaml_content": "version: 0.6.0\n"}
        ),
        "06h",
    )
    _same_but(session.post("/console/api/apps/imports", json={"mode": "yaml-content"}), "06i", "id")
    pending = _same_but(
        _import(session, cat.replace("0.1.5", "9.9.9").replace("Cat_LLM", "Cat_LLM_v9")),
        "06c",
        "id",
    )
    assert [
        a["name"] for a in session.get("/console/api/apps?name=Cat_LLM_v9").json()["data"]
    ] == []
    confirm = f"/console/api/apps/imports/{pending['id']}/confirm"
    done = _same_but(session.post(confirm), "06d", "id", "app_id")
    assert done["id"] == pending["id"]
    _same_but(session.post(confirm), "06e", "id")
    listed = session.get("/console/api/apps?page=1&limit=20&name=Cat_LLM").json()
    assert listed["total"] == 2 and set(listed["data"][0]) <= set(body("07e")["data"][0])


def test_publish(session: TestClient) -> None:
    app_id = _import(session, CAT_DSL.read_text()).json()["app_id"]
    assert session.get(f"/console/api/apps/{app_id}").json()["workflow"] is None
    published = session.post(
        f"/console/api/apps/{app_id}/workflows/publish",
        json={"marked_name": "", "marked_comment": ""},
    )
    assert published.status_code == 200 and set(published.json()) == set(body("07a"))
    detail = session.get(f"/console/api/apps/{app_id}").json()
    assert detail["workflow"]["id"] and detail["api_base_url"].endswith("/v1")
    assert set(detail) <= set(body("07b"))
    assert {k: detail[k] for k in ("mode", "enable_api", "enable_site", "name")} == {
        k: body("07b")[k] for k in ("mode", "enable_api", "enable_site", "name")
    }
    _same(session.post(f"/console/api/apps/{app_id}/workflows/publish"), "07d")
    assert (
        session.post(f"/console/api/apps/{app_id}/workflows/publish", json={}).status_code == 200
    )  # 07f
    _same(
        session.post(
            "/console/api/apps/00000000-0000-4000-8000-000000000000/workflows/publish", json={}
        ),
        "07g",
    )


def test_publish_on_a_chat_app(session: TestClient) -> None:
    chat = (CAT_DSL.parent.parent / "tests/fixtures/dsl/llm_chat.yml").read_text()
    app_id = _import(session, chat).json()["app_id"]
    refused = session.post(f"/console/api/apps/{app_id}/workflows/publish", json={})
    assert refused.status_code == 404
    assert refused.content == load("console/07c").body.replace(
        b"55b9cdbb-ada2-4d20-920a-177edf15aa9a", app_id.encode()
    )


def test_api_keys_and_delete(session: TestClient) -> None:
    app_id = _import(session, CAT_DSL.read_text()).json()["app_id"]
    keys = f"/console/api/apps/{app_id}/api-keys"
    created = _same_but(session.post(keys), "08a", "id", "token", "created_at")
    assert created["token"].startswith("app-") and len(created["token"]) == 28
    assert session.get(keys).json() == {"data": [created]}  # 08b
    for _ in range(9):
        assert session.post(keys).status_code == 201
    _same(session.post(keys), "08c")
    assert session.delete(f"{keys}/{created['id']}").status_code == 204  # 08d
    _same(session.delete(f"{keys}/{created['id']}"), "08e")
    assert session.delete(f"/console/api/apps/{app_id}").status_code == 204  # 09a
    _same(session.delete(f"/console/api/apps/{app_id}"), "09b")
    gone = session.get(keys)
    assert gone.status_code == 404
    assert gone.content == load("console/09d").body.replace(RECORDED_APP.encode(), app_id.encode())


def test_service_api_runs_only_published_workflows(session: TestClient) -> None:
    app_id = _import(session, CAT_DSL.read_text()).json()["app_id"]
    token = session.post(f"/console/api/apps/{app_id}/api-keys").json()["token"]
    ask = {"query": "hi", "user": "u", "inputs": {}, "response_mode": "blocking"}
    auth = {"Authorization": f"Bearer {token}"}
    assert session.post("/v1/chat-messages", json=ask, headers=auth).status_code == 401
    session.post(f"/console/api/apps/{app_id}/workflows/publish", json={})
    answered = session.post("/v1/chat-messages", json=ask, headers=auth)
    assert answered.status_code == 200 and answered.json()["answer"] == "喵"
    session.delete(f"/console/api/apps/{app_id}")
    assert (
        session.post("/v1/chat-messages", json=ask, headers=auth).status_code == 401
    )  # keys die with the app


def test_refresh_and_logout(session: TestClient) -> None:
    old_refresh = session.cookies["refresh_token"]
    refreshed = session.post(
        "/console/api/refresh-token", headers={"Cookie": f"refresh_token={old_refresh}"}
    )
    _same(refreshed, "10a")
    assert [c.split("=")[0] for c in refreshed.headers.get_list("set-cookie")] == [
        "access_token",
        "refresh_token",
        "csrf_token",
    ]
    _same(session.post("/console/api/refresh-token", headers={"Cookie": "x=1"}), "10b")
    _same(
        session.post(
            "/console/api/refresh-token", headers={"Cookie": f"refresh_token={old_refresh}"}
        ),
        "10c",
    )
    session.cookies.clear()
    _same(session.post("/console/api/logout"), "10h")
