"""Every failure `dify-bridge provision` can meet against a Dify (the emulator, real HTTP):
its message, its exit code, and no admin password or key anywhere in what it prints or logs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bridge.emulator.console_state import MAX_KEYS
from tests.support.servers import free_port, serve_in_thread

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CAT_DSL, Dify, start_dify

BAD_DSLS = {
    "syntax": ("app: [unclosed\nversion: 0.6.0\n", "Invalid YAML format: while parsing a flow"),
    "scalar": ("this is not a Dify DSL file", "Invalid YAML format: content must be a mapping"),
    "version": (
        "version: abc\nkind: app\napp:\n  name: x\n  mode: workflow\n",
        "Invalid version: 'abc'",
    ),
    "float-version": ("version: 0.6\napp: {name: x, mode: workflow}\n", "Invalid version type"),
    "no-app": ("version: 0.6.0\nkind: app\n", "Missing app data in YAML content"),
    "bad-mode": (
        "version: 0.6.0\nkind: app\napp: {name: x, mode: chatbot}\n",
        "Invalid app mode: chatbot",
    ),
}


def _args(dify: Dify, dsl: Path, config: Path, *extra: str) -> list[str]:
    return [str(dsl), "--dify-url", dify.url, "--write-config", str(config), *extra]


def _no_secrets(run, *more: str) -> None:
    for secret in (ADMIN_PASSWORD, *more):
        assert secret not in run.everything


@pytest.mark.parametrize("case", sorted(BAD_DSLS))
def test_invalid_dsl(set_up_dify: Dify, provision, tmp_path: Path, case: str) -> None:
    text, message = BAD_DSLS[case]
    dsl = tmp_path / f"{case}.yml"
    dsl.write_text(text)
    config = tmp_path / "bridge.yaml"
    apps_before = set(set_up_dify.console.apps)
    run = provision(*_args(set_up_dify, dsl, config, "--model", "m"))
    assert run.exit_code == 1, run.everything
    assert f"Dify rejected {dsl}: {message}" in run.stderr
    assert set(set_up_dify.console.apps) == apps_before
    assert not config.exists()
    _no_secrets(run)


def test_wrong_password(set_up_dify: Dify, provision, tmp_path: Path) -> None:
    wrong = "Wr0ng-but-close"
    run = provision(*_args(set_up_dify, CAT_DSL, tmp_path / "b.yaml"), password=wrong)
    assert run.exit_code == 1
    assert (
        f"Dify refused the admin login for {ADMIN_EMAIL}: Invalid email or password. (HTTP 401); "
        "check DIFY_ADMIN_EMAIL / DIFY_ADMIN_PASSWORD" in run.stderr
    )
    _no_secrets(run, wrong)
    # The emulator's journal shows the login but not the password, in any encoding.
    logins = [e for e in set_up_dify.journal() if e["path"].endswith("/login")]
    assert logins and all(e["json"]["password"] == "REDACTED" for e in logins)


def test_console_unreachable(provision, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = provision(str(CAT_DSL), "--dify-url", url, "--write-config", str(tmp_path / "b.yaml"))
    assert run.exit_code == 3
    assert f"cannot reach Dify's console API at {url}/console/api" in run.stderr
    _no_secrets(run)


def test_not_dify(provision, tmp_path: Path) -> None:
    # Something answers, but not with Dify's console API (e.g. the bridge's own URL).
    from bridge import create_app, load_settings

    with serve_in_thread(create_app(load_settings(env={"BRIDGE_STORE": "memory://"}))) as url:
        run = provision(str(CAT_DSL), "--dify-url", url, "--write-config", str(tmp_path / "b.yaml"))
    assert run.exit_code == 3
    assert "is --dify-url the Dify base URL?" in run.stderr


def test_key_limit(set_up_dify: Dify, provision, tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    assert provision(*_args(set_up_dify, CAT_DSL, config, "--model", "limited")).exit_code == 0
    entry = yaml.safe_load(config.read_text())["models"][0]
    app = set_up_dify.console.apps[entry["dify_app_id"]]
    # The recorded key was deleted in Dify and others took all the slots.
    set_up_dify.console.delete_key(app.id, app.keys[0].id, "")
    for _ in range(MAX_KEYS):
        set_up_dify.console.create_key(app.id, "")
    run = provision(*_args(set_up_dify, CAT_DSL, config, "--model", "limited"))
    assert run.exit_code == 1
    assert "Cannot create more than 10 API keys for this resource type." in run.stderr
    assert "Free one: in Dify open the app → API Access → API Key" in run.stderr
    _no_secrets(run, *(k.token for k in app.keys))


def test_chat_app_dsl_change_cannot_overwrite(set_up_dify: Dify, provision, tmp_path: Path) -> None:
    dsl = tmp_path / "chat.yml"
    dsl.write_text((Path(__file__).parents[1] / "fixtures/dsl/llm_chat.yml").read_text())
    config = tmp_path / "bridge.yaml"
    assert provision(*_args(set_up_dify, dsl, config, "--model", "chat")).exit_code == 0
    dsl.write_text(dsl.read_text() + "\n# changed\n")
    run = provision(*_args(set_up_dify, dsl, config, "--model", "chat"))
    assert run.exit_code == 1
    assert "Dify can overwrite only workflow and chatflow apps" in run.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DIFY_ADMIN_EMAIL": ""}, "the admin email is required: set DIFY_ADMIN_EMAIL"),
        ({"DIFY_ADMIN_PASSWORD": ""}, "the admin password is required: set DIFY_ADMIN_PASSWORD"),
    ],
)
def test_missing_credentials(provision, tmp_path: Path, env: dict, message: str) -> None:
    run = provision(
        str(CAT_DSL),
        "--dify-url",
        "http://127.0.0.1:9",
        "--write-config",
        str(tmp_path / "b"),
        **env,
    )
    assert run.exit_code == 2
    assert message in run.stderr


def test_usage_errors(provision, tmp_path: Path) -> None:
    missing = provision(str(tmp_path / "nope.yml"), "--dify-url", "http://127.0.0.1:9",
                        "--write-config", str(tmp_path / "b"))  # fmt: skip
    assert missing.exit_code == 2
    assert f"cannot read DSL file {tmp_path / 'nope.yml'}" in missing.stderr
    no_config = provision(str(CAT_DSL), "--dify-url", "http://127.0.0.1:9")
    assert no_config.exit_code == 2
    assert "--write-config PATH (or BRIDGE_CONFIG)" in no_config.stderr
    too_many = provision(str(CAT_DSL), "--dify-url", "http://127.0.0.1:9", "--model", "a",
                         "--model", "b", "--write-config", str(tmp_path / "b"))  # fmt: skip
    assert too_many.exit_code == 2
    assert "at most one --model per DSL file" in too_many.stderr
    (tmp_path / "list.yaml").write_text("- not a mapping\n")
    bad_config = provision(str(CAT_DSL), "--dify-url", "http://127.0.0.1:9",
                           "--write-config", str(tmp_path / "list.yaml"))  # fmt: skip
    assert bad_config.exit_code == 2
    assert "expected a mapping at the top level" in bad_config.stderr


def test_init_password(provision, tmp_path: Path) -> None:
    app = start_dify(init_password="let-me-in")
    with serve_in_thread(app) as url:
        dify = Dify(url, app)
        config = tmp_path / "bridge.yaml"
        without = provision(*_args(dify, CAT_DSL, config))
        assert without.exit_code == 1
        assert "set DIFY_INIT_PASSWORD to the server's INIT_PASSWORD" in without.stderr
        wrong = provision(*_args(dify, CAT_DSL, config), DIFY_INIT_PASSWORD="nope")
        assert wrong.exit_code == 1
        assert "Dify refused DIFY_INIT_PASSWORD" in wrong.stderr
        right = provision(*_args(dify, CAT_DSL, config), DIFY_INIT_PASSWORD="let-me-in")
        assert right.exit_code == 0, right.everything
        assert f"creating the admin {ADMIN_EMAIL}" in right.stderr
        _no_secrets(right, "let-me-in")


def test_weak_admin_password_on_fresh_dify(dify: Dify, provision, tmp_path: Path) -> None:
    run = provision(*_args(dify, CAT_DSL, tmp_path / "b.yaml"), password="short")
    assert run.exit_code == 1
    assert "at least 8 characters with a letter and a digit" in run.stderr
    assert not dify.console.is_set_up


def test_newer_dsl_version_is_confirmed(set_up_dify: Dify, provision, tmp_path: Path) -> None:
    dsl = tmp_path / "v9.yml"
    dsl.write_text(CAT_DSL.read_text().replace("version: 0.1.5", "version: 9.9.9"))
    run = provision(*_args(set_up_dify, dsl, tmp_path / "b.yaml", "--model", "v9"))
    assert run.exit_code == 0, run.everything
    assert "DSL version 9.9.9 is newer than this Dify's 0.6.0; import confirmed" in run.stdout
    confirms = [e for e in set_up_dify.journal() if e["path"].endswith("/confirm")]
    assert len(confirms) == 1
