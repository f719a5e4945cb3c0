"""Issue 12's acceptance path: Cat_LLM.yml into a fresh Dify (the emulator, over real HTTP),
serve the written config, chat through the openai SDK with the generated key → 喵; then a
second run creates nothing, and a changed DSL goes into the same app."""

from __future__ import annotations

import stat
from pathlib import Path

import openai
import pytest
import yaml

from bridge import create_app, load_settings
from tests.support.servers import serve_in_thread

from .conftest import ADMIN_PASSWORD, CAT_DSL

CREATING = ("/apps/imports", "/api-keys", "/workflows/publish", "/setup")


def _creating_calls(journal: list[dict]) -> list[str]:
    return [
        f"{e['method']} {e['path']}"
        for e in journal
        if (e["method"] in ("POST", "DELETE") and e["path"].endswith(CREATING))
        or (e["method"] == "POST" and "/imports/" in e["path"])
    ]


def _ask(bridge_url: str, key: str, model: str = "o1") -> str:
    client = openai.OpenAI(base_url=f"{bridge_url}/v1", api_key=key, max_retries=0)
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hello"}]
    )
    return reply.choices[0].message.content or ""


def test_provision_serve_chat_then_rerun_creates_nothing(dify, provision, tmp_path: Path) -> None:
    config_path = tmp_path / "bridge.yaml"
    args = [
        str(CAT_DSL),
        "--dify-url",
        dify.url,
        "--model",
        "o1",
        "--write-config",
        str(config_path),
    ]

    first = provision(*args)
    assert first.exit_code == 0, first.everything
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config = yaml.safe_load(config_path.read_text())
    (model,) = config["models"]
    bridge_key = config["api_keys"][0]
    assert bridge_key.startswith("sk-") and len(bridge_key) >= 40
    assert model["id"] == "o1" and model["mode"] == "auto"
    assert model["app_key"].startswith("app-")
    assert config["dify_api_url"] == f"{dify.url}/v1"
    app_id = model["dify_app_id"]
    assert dify.console.apps[app_id].name == "Cat_LLM"
    # What it did, in order: set up the fresh instance, import, publish, one key.
    assert _creating_calls(dify.journal()) == [
        "POST /console/api/setup",
        "POST /console/api/apps/imports",
        f"POST /console/api/apps/{app_id}/workflows/publish",
        f"POST /console/api/apps/{app_id}/api-keys",
    ]
    assert "imported, published, key created" in first.stdout
    assert "Base URL : http://127.0.0.1:8000/v1" in first.stdout
    assert "Model    : o1" in first.stdout
    assert "older than this Dify's 0.6.0" in first.stdout  # Cat_LLM is DSL 0.1.5
    for secret in (ADMIN_PASSWORD, bridge_key, model["app_key"]):
        assert secret not in first.everything
    assert bridge_key[-4:] in first.stdout  # masked, but recognisable

    # Serve exactly what was written; only the generated key gets in.
    settings = load_settings(config_path, env={"BRIDGE_STORE": "memory://"})
    with serve_in_thread(create_app(settings)) as bridge_url:
        assert _ask(bridge_url, bridge_key) == "喵"
        with pytest.raises(openai.AuthenticationError):
            _ask(bridge_url, "sk-wrong")

    dify.clear_journal()
    written = config_path.read_text()
    second = provision(*args)
    assert second.exit_code == 0, second.everything
    assert _creating_calls(dify.journal()) == []
    assert config_path.read_text() == written  # same app id, same key, same bridge key
    assert len(dify.console.apps) == 1
    assert len(dify.console.apps[app_id].keys) == 1
    assert "nothing changed" in second.stdout


def test_changed_dsl_is_reimported_into_the_same_app(dify, provision, tmp_path: Path) -> None:
    config_path = tmp_path / "bridge.yaml"
    dsl = tmp_path / "cat.yml"
    dsl.write_text(CAT_DSL.read_text(encoding="utf-8"), encoding="utf-8")
    args = [str(dsl), "--dify-url", f"{dify.url}/v1", "--write-config", str(config_path)]
    assert provision(*args).exit_code == 0
    before = yaml.safe_load(config_path.read_text())
    (model,) = before["models"]
    assert model["id"] == "Cat_LLM"  # no --model: the app's name

    dsl.write_text(dsl.read_text(encoding="utf-8").replace("description: ''", "description: v2"))
    dify.clear_journal()
    changed = provision(*args)
    assert changed.exit_code == 0, changed.everything
    after = yaml.safe_load(config_path.read_text())
    assert after["models"][0]["dify_app_id"] == model["dify_app_id"]
    assert after["models"][0]["app_key"] == model["app_key"]
    assert after["api_keys"] == before["api_keys"]
    imports = [e for e in dify.journal() if e["path"].endswith("/apps/imports")]
    assert [e["json"]["app_id"] for e in imports] == [model["dify_app_id"]]
    assert "re-imported, published" in changed.stdout
    assert dify.console.apps[model["dify_app_id"]].description == "v2"


def test_existing_config_is_kept_and_extended(dify, provision, tmp_path: Path) -> None:
    config_path = tmp_path / "bridge.yaml"
    config_path.write_text(
        "api_keys: ['${BRIDGE_KEY}']\n"
        "dify_api_url: http://other-dify/v1\n"
        "models:\n  - id: other\n    app_key: app-other\n    reasoning: think\n"
    )
    config_path.chmod(0o644)
    run = provision(str(CAT_DSL), "--dify-url", dify.url, "--model", "o1",
                    "--write-config", str(config_path))  # fmt: skip
    assert run.exit_code == 0, run.everything
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config = yaml.safe_load(config_path.read_text())
    assert config["api_keys"] == ["${BRIDGE_KEY}"]  # kept, not interpolated, no new key
    assert config["dify_api_url"] == "http://other-dify/v1"
    other, o1 = config["models"]
    assert other == {"id": "other", "app_key": "app-other", "reasoning": "think"}
    assert o1["dify_url"] == f"{dify.url}/v1"  # this Dify, for this model only
    assert "api_keys in" in run.stdout and "new," not in run.stdout


def test_app_deleted_in_dify_is_imported_anew(dify, provision, tmp_path: Path) -> None:
    config_path = tmp_path / "bridge.yaml"
    args = [
        str(CAT_DSL),
        "--dify-url",
        dify.url,
        "--model",
        "o1",
        "--write-config",
        str(config_path),
    ]
    assert provision(*args).exit_code == 0
    first = yaml.safe_load(config_path.read_text())
    old_id = first["models"][0]["dify_app_id"]
    dify.console.delete_app(old_id)
    again = provision(*args)
    assert again.exit_code == 0, again.everything
    second = yaml.safe_load(config_path.read_text())
    (model,) = second["models"]
    assert model["dify_app_id"] != old_id and model["dify_app_id"] in dify.console.apps
    assert model["app_key"] != first["models"][0]["app_key"]
    assert second["api_keys"] == first["api_keys"]
    assert f"app {old_id} recorded for model o1 is gone from Dify; imported anew" in again.stdout
