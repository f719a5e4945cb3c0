"""The console-protocol details that matter, with real Dify 1.13.2 answers replayed to the
provisioner: base64 password, CSRF header on every authenticated call (GET included), the
pending-import confirm, the key limit, failed imports and publish errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from bridge.provision import ConsoleClient, Credentials, ProvisionError, provision
from bridge.provision.console import ConsoleError

from .conftest import CAT_DSL
from .recorded import APP, HAPPY, RecordedConsole, body

PASSWORD = "Real-Pa55word"
CREDS = Credentials(email="admin@example.com", password=PASSWORD)


def _run(tmp_path: Path, routes: dict, dsl: Path = CAT_DSL, models: list[str] | None = None):
    console = RecordedConsole(PASSWORD, routes)
    transport = console.transport()
    outcome = provision(
        [dsl],
        models or ["o1"],
        "http://dify.test",
        tmp_path / "bridge.yaml",
        CREDS,
        client_factory=lambda url: ConsoleClient(url, transport=transport),
    )
    return outcome, console


def test_login_is_base64_and_every_call_carries_the_csrf_cookie_as_header(tmp_path: Path) -> None:
    outcome, console = _run(tmp_path, HAPPY)
    (login,) = [r for r in console.seen if r.url.path.endswith("/login")]
    sent = json.loads(login.content)
    assert sent == {
        "email": "admin@example.com",
        "password": base64.b64encode(PASSWORD.encode()).decode(),
        "remember_me": True,
    }
    assert PASSWORD not in login.content.decode()
    after_login = console.seen[console.seen.index(login) + 1 :]
    assert {r.method for r in after_login} == {"GET", "POST"}
    for request in after_login:  # 04b: without the header even a GET is 401
        assert request.headers["x-csrf-token"] == "TOKEN-REDACTED"
        assert "csrf_token=TOKEN-REDACTED" in request.headers["cookie"]
    (model,) = outcome.models
    assert model.app_id == body("05a")["app_id"]
    assert model.actions == ["imported", "published", "key created"]
    publish = next(r for r in console.seen if r.url.path.endswith("/publish"))
    assert publish.headers["content-type"] == "application/json"  # 07d: 415 without one


def test_pending_import_is_confirmed(tmp_path: Path) -> None:
    dsl = tmp_path / "v9.yml"
    dsl.write_text(CAT_DSL.read_text().replace("version: 0.1.5", "version: 9.9.9"))
    routes = {
        **HAPPY,
        ("POST", "/apps/imports"): "06c",
        ("POST", r"/apps/imports/[0-9a-f-]{36}/confirm"): "06d",
    }
    outcome, console = _run(tmp_path, routes, dsl)
    (confirm,) = [r for r in console.seen if r.url.path.endswith("/confirm")]
    assert confirm.url.path == f"/console/api/apps/imports/{body('06c')['id']}/confirm"
    (model,) = outcome.models
    assert "DSL version 9.9.9 is newer than this Dify's 0.6.0" in model.warnings[0]


def test_expired_pending_import_fails_clearly(tmp_path: Path) -> None:
    routes = {
        **HAPPY,
        ("POST", "/apps/imports"): "06c",
        ("POST", r"/apps/imports/[0-9a-f-]{36}/confirm"): "06e",
    }
    with pytest.raises(ProvisionError, match="Import information expired or does not exist"):
        _run(tmp_path, routes)


def test_key_limit_says_how_to_free_a_key(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError) as caught:
        _run(tmp_path, {**HAPPY, ("POST", APP + "/api-keys"): "08c"})
    message = caught.value.message
    assert "Cannot create more than 10 API keys for this resource type." in message
    assert "API Access" in message and "delete a key" in message
    assert caught.value.exit_code == 1
    # The app was created: the config remembers it, so a re-run does not import it again.
    assert body("05a")["app_id"] in (tmp_path / "bridge.yaml").read_text()


@pytest.mark.parametrize(
    ("recording", "text"),
    [
        ("06a", "Invalid YAML format: while parsing a flow sequence"),
        ("06b", "Invalid YAML format: content must be a mapping"),
        ("06f", "Invalid version: 'abc'"),
        ("06g", "Missing app data in YAML content"),
    ],
)
def test_failed_import_reports_difys_reason(tmp_path: Path, recording: str, text: str) -> None:
    with pytest.raises(ProvisionError, match="Dify rejected .*: " + text) as caught:
        _run(tmp_path, {**HAPPY, ("POST", "/apps/imports"): recording})
    assert caught.value.exit_code == 1


@pytest.mark.parametrize("recording", ["07c", "07g"])
def test_publish_error(tmp_path: Path, recording: str) -> None:
    with pytest.raises(ProvisionError, match="could not publish Cat_LLM") as caught:
        _run(tmp_path, {**HAPPY, ("POST", APP + "/workflows/publish"): recording})
    assert body(recording)["message"].split(".")[0] in caught.value.message


def test_wrong_password(tmp_path: Path) -> None:
    console = RecordedConsole("another password", HAPPY)
    with pytest.raises(ProvisionError, match="Invalid email or password") as caught:
        provision(
            [CAT_DSL], ["o1"], "http://dify.test", tmp_path / "bridge.yaml", CREDS,
            client_factory=lambda url: ConsoleClient(url, transport=console.transport()),
        )  # fmt: skip
    assert PASSWORD not in caught.value.message
    assert not (tmp_path / "bridge.yaml").exists()  # nothing written on a failed login


def test_setup_sends_the_plain_password_and_reads_the_422() -> None:
    console = RecordedConsole(PASSWORD, {("POST", "/setup"): "02b"})
    client = ConsoleClient("http://dify.test/console/api", transport=console.transport())
    with pytest.raises(ConsoleError) as caught:
        client.setup("not-an-email", "admin", "short")
    assert caught.value.status == 422 and caught.value.kind == "validation_error"
    sent = json.loads(console.seen[0].content)
    assert sent["password"] == "short"  # setup, unlike login, takes the plain password


def test_bad_import_mode_is_an_error_not_an_import(tmp_path: Path) -> None:
    console = RecordedConsole(PASSWORD, {**HAPPY, ("POST", "/apps/imports"): "06h"})
    with ConsoleClient("http://dify.test/v1", transport=console.transport()) as client:
        client.login(CREDS.email, PASSWORD)
        with pytest.raises(ConsoleError, match=r"Invalid import_mode: yaml \(HTTP 400\)") as caught:
            client.import_dsl("version: 0.6.0\n")
    assert caught.value.kind == "invalid_param"


def test_deleted_app_reads_as_missing() -> None:
    console = RecordedConsole(PASSWORD, {**HAPPY, ("GET", APP): "09b"})
    with ConsoleClient("http://dify.test", transport=console.transport()) as client:
        client.login(CREDS.email, PASSWORD)
        assert client.app("13bede26-15c7-4bac-a211-175e91ec4b43") is None


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("http://dify.test", "http://dify.test"),
        ("http://dify.test/", "http://dify.test"),
        ("http://dify.test/v1", "http://dify.test"),
        ("http://dify.test/v1/", "http://dify.test"),
        ("https://x.example/dify/console/api", "https://x.example/dify"),
    ],
)
def test_dify_url_forms(url: str, root: str) -> None:
    client = ConsoleClient(url)
    assert (client.root, client.console_url, client.service_url) == (
        root, f"{root}/console/api", f"{root}/v1",
    )  # fmt: skip
    client.close()
