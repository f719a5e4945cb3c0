"""bridge.launch.keys: the tunnel's key file (created 0600, reused, repaired) and which key
the banner tells a client to send."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from bridge.launch.errors import LaunchError
from bridge.launch.keys import client_key, masked, needs_tunnel_key, tunnel_key
from bridge.settings import ModelConfig, Settings, load_settings

posix_modes = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_modes
def test_first_run_creates_folder_and_a_private_key(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "new" / "data"
    kept = tunnel_key(data)
    assert kept.created
    assert kept.path == data / "tunnel-api-key"
    assert kept.key.startswith("sk-") and len(kept.key) >= 40
    assert kept.path.read_text() == kept.key + "\n"
    assert _mode(kept.path) == 0o600
    assert _mode(data) == 0o700
    # Issue 17: the first run printed "No such file or directory" before the key message.
    out, err = capfd.readouterr()
    assert out == err == ""


def test_second_run_reuses_the_key(tmp_path: Path) -> None:
    first = tunnel_key(tmp_path)
    second = tunnel_key(tmp_path)
    assert not second.created
    assert second.key == first.key


@posix_modes
def test_reuse_tightens_a_loose_file(tmp_path: Path) -> None:
    path = tmp_path / "tunnel-api-key"
    key = "sk-" + "a" * 40
    path.write_text(f"  {key}\n\n")
    path.chmod(0o644)
    kept = tunnel_key(tmp_path)
    assert (kept.key, kept.created) == (key, False)
    assert _mode(path) == 0o600


@pytest.mark.parametrize("junk", ["", "hello", "sk-short", "\xff\xfe"])
def test_junk_is_replaced_by_a_new_key(tmp_path: Path, junk: str) -> None:
    (tmp_path / "tunnel-api-key").write_bytes(junk.encode("latin-1"))
    kept = tunnel_key(tmp_path)
    assert kept.created
    assert kept.key.startswith("sk-") and kept.key != junk


@posix_modes
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores modes")
def test_unwritable_folder_says_what_to_set(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(LaunchError, match="BRIDGE_DATA_DIR"):
        tunnel_key(locked / "data")


def test_a_file_where_the_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    with pytest.raises(LaunchError, match=r"cannot create .*data.*BRIDGE_DATA_DIR"):
        tunnel_key(tmp_path / "data")


def _settings(**env: str) -> Settings:
    return load_settings(None, env={"BRIDGE_STORE": "memory://", **env})


@pytest.mark.parametrize(
    ("env", "needed"),
    [
        ({}, True),  # demo mode: the emulator's apps, answered for anyone
        ({"DIFY_API_URL": "http://d/v1", "DIFY_API_KEY": "app-x"}, True),
        ({"DIFY_API_URL": "http://d/v1"}, False),  # passthrough: the client's key is the secret
        ({"BRIDGE_API_KEYS": "sk-mine"}, False),
    ],
)
def test_which_set_ups_need_a_tunnel_key(env: dict[str, str], needed: bool) -> None:
    assert needs_tunnel_key(_settings(**env)) is needed


def test_models_with_their_own_app_key_need_one_too() -> None:
    settings = Settings(dify_api_url="http://d/v1", models=[ModelConfig(id="m", app_key="app-k")])
    assert needs_tunnel_key(settings)


def test_client_key_per_set_up() -> None:
    demo = client_key(_settings())
    assert (demo.key, demo.model) == ("any-text", "o1")
    assert "demo mode" in demo.note
    keyed = client_key(_settings(BRIDGE_API_KEYS="sk-first,sk-second"))
    assert keyed.key == "sk-first"
    passthrough = client_key(_settings(DIFY_API_URL="http://d/v1"))
    assert passthrough.key == "app-YOUR-DIFY-APP-KEY"
    assert "passthrough mode" in passthrough.note
    open_models = client_key(_settings(DIFY_API_URL="http://d/v1", DIFY_API_KEY="app-x"))
    assert open_models.key == "any-text"
    assert "set BRIDGE_API_KEYS before sharing a public URL" in open_models.note


def test_a_config_with_models_names_its_first_model() -> None:
    settings = Settings(
        dify_api_url="http://d/v1",
        api_keys=["sk-" + "k" * 48],
        models=[ModelConfig(id="cat", app_key="app-k")],
    )
    assert client_key(settings).model == "cat"


def test_masked() -> None:
    assert masked("sk-" + "x" * 44 + "wxyz") == "sk-…wxyz"
    assert masked("short") == "short"
