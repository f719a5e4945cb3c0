"""The pure parts of provisioning: the config editor, key masking, DSL reading."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bridge.provision import config as cfg
from bridge.provision.dsl import DslReadError, read_dsl
from bridge.settings import load_settings

from .conftest import CAT_DSL


def test_new_config_is_0600_and_loads_in_the_bridge(tmp_path: Path) -> None:
    config: dict = {}
    entry = cfg.model_entry(config, "o1")
    entry.update(app_key="app-" + "a" * 24, dify_app_id="id-1", dify_dsl_digest="d")
    cfg.point_at_dify(config, entry, "http://dify.test/v1")
    key = cfg.ensure_bridge_key(config)
    path = tmp_path / "sub" / "bridge.yaml"
    cfg.write_config(path, config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["bridge.yaml"]  # no temp file left
    settings = load_settings(path, env={})
    assert settings.api_keys == [key]
    assert settings.dify_api_url == "http://dify.test/v1"
    (model,) = settings.models
    assert (model.id, model.mode, model.dify_app_id) == ("o1", "auto", "id-1")


def test_rewrite_tightens_an_open_file(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text("port: 9000\n")
    path.chmod(0o644)
    config = cfg.read_config(path)
    cfg.write_config(path, config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cfg.read_config(path) == {"port": 9000}


def test_bridge_key_only_when_none() -> None:
    config: dict = {"api_keys": ["${KEY}"]}
    assert cfg.ensure_bridge_key(config) is None
    fresh: dict = {}
    key = cfg.ensure_bridge_key(fresh)
    assert key and key.startswith("sk-") and len(key) == 51 and key[3:].isalnum()
    assert cfg.new_bridge_key() != cfg.new_bridge_key()


def test_other_dify_goes_per_model() -> None:
    config = {"dify_api_url": "http://a/v1"}
    entry = cfg.model_entry(config, "m")
    cfg.point_at_dify(config, entry, "http://b/v1")
    assert entry["dify_url"] == "http://b/v1" and config["dify_api_url"] == "http://a/v1"
    cfg.point_at_dify(config, entry, "http://a/v1")
    assert "dify_url" not in entry


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]\n", "expected a mapping"),
        ("a: [\n", "not valid YAML"),
        ("models: 3\n", "list of mappings"),
    ],
)
def test_unusable_config(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(text)
    with pytest.raises(cfg.ConfigFileError, match=message):
        cfg.read_config(path)


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("app-abcdefghijklmnopqrstuvwx", "app-…uvwx"),
        ("sk-" + "x" * 44 + "WXYZ", "sk-…WXYZ"),
        ("short", "…"),
        (None, "-"),
    ],
)
def test_mask(secret: str | None, shown: str) -> None:
    assert cfg.mask(secret) == shown


def test_read_dsl(tmp_path: Path) -> None:
    dsl = read_dsl(CAT_DSL)
    assert (dsl.app_name, dsl.app_mode, len(dsl.digest)) == ("Cat_LLM", "advanced-chat", 64)
    broken = tmp_path / "broken.yml"
    broken.write_text("app: [unclosed\n")
    assert read_dsl(broken).app_name is None  # still sent: Dify gives the verdict
    with pytest.raises(DslReadError, match="cannot read DSL file"):
        read_dsl(tmp_path / "missing.yml")
    binary = tmp_path / "bin.yml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(DslReadError, match="not UTF-8"):
        read_dsl(binary)
