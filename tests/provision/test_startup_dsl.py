"""scripts/startup.sh --dsl FILE [--model NAME] and --with-dify with admin credentials:
provision into a Dify (the emulator on 127.0.0.1), then serve the written config."""

from __future__ import annotations

import json
import shutil
import signal
import stat
import urllib.request
from pathlib import Path

import pytest
import yaml

from bridge.emulator import create_emulator_app
from tests.ops.helpers import (
    MARKER_VAR,
    REPO,
    Running,
    make_fake_venv,
    marked_processes,
    run_script,
    script_env,
)
from tests.support.servers import free_port, serve_in_thread

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CAT_DSL

pytestmark = [
    pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash"),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc"),
]
ADMIN = {"DIFY_ADMIN_EMAIL": ADMIN_EMAIL, "DIFY_ADMIN_PASSWORD": ADMIN_PASSWORD}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return script_env(tmp_path, XDG_CONFIG_HOME=str(tmp_path / "config"), **extra)


def _chat(port: int, key: str, model: str = "o1") -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["choices"][0]["message"]["content"]


def _serve_and_check(running: Running, env: dict[str, str], port: int, config: Path) -> None:
    try:
        running.wait_for("Press Ctrl-C to stop.", timeout=90)
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        written = yaml.safe_load(config.read_text())
        key = written["api_keys"][0]
        assert _chat(port, key) == "喵"
        out = running.output
        assert "model: o1" in out
        assert f"{key[:3]}…{key[-4:]}" in out and key not in out  # masked in the banner too
        assert written["models"][0]["app_key"] not in out and ADMIN_PASSWORD not in out
        running.proc.send_signal(signal.SIGTERM)
        assert running.wait(timeout=30) == 143, running.output
        assert not marked_processes(env[MARKER_VAR])
    finally:
        running.kill_everything()


@pytest.mark.slow
def test_dsl_is_provisioned_then_served(tmp_path: Path) -> None:
    port = free_port()
    with serve_in_thread(create_emulator_app()) as dify:
        env = _env(
            tmp_path,
            DIFY_API_URL=f"{dify}/v1",
            BRIDGE_VENV=str(REPO / ".venv"),
            BRIDGE_SKIP_INSTALL="1",
            **ADMIN,
        )
        running = Running(
            ["--dsl", str(CAT_DSL), "--model", "o1", "--port", str(port)], env, cwd=tmp_path
        )
        _serve_and_check(running, env, port, tmp_path / "config" / "dify-bridge" / "bridge.yaml")


@pytest.mark.slow
def test_with_dify_and_admin_login_provisions_cat_llm_as_o1(tmp_path: Path) -> None:
    # Docker is a stand-in that succeeds; "Dify's nginx" is the emulator on BRIDGE_DIFY_PORT.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "docker").chmod(0o755)
    dify_dir = tmp_path / "cache" / "dify-bridge" / "dify-1.13.2" / "docker"
    dify_dir.mkdir(parents=True)
    (dify_dir / "docker-compose.yaml").write_text("services: {}\n")
    (dify_dir / ".env.example").write_text("")
    port = free_port()
    with serve_in_thread(create_emulator_app()) as dify:
        env = _env(
            tmp_path,
            PATH=f"{bin_dir}:/usr/bin:/bin",
            BRIDGE_DIFY_PORT=dify.rsplit(":", 1)[1],
            BRIDGE_VENV=str(REPO / ".venv"),
            BRIDGE_SKIP_INSTALL="1",
            **ADMIN,
        )
        config = tmp_path / "bridge.yaml"
        running = Running(
            ["--with-dify", "--config", str(config), "--port", str(port)], env, cwd=tmp_path
        )
        _serve_and_check(running, env, port, config)


@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (["--dsl", str(CAT_DSL)], ADMIN, "--dsl needs a Dify to provision into: set DIFY_API_URL"),
        (
            ["--dsl", str(CAT_DSL)],
            {"DIFY_API_URL": "http://127.0.0.1:9/v1"},
            "set DIFY_ADMIN_EMAIL and DIFY_ADMIN_PASSWORD",
        ),
        (
            ["--dsl", "missing.yml"],
            {**ADMIN, "DIFY_API_URL": "http://x/v1"},
            "--dsl missing.yml: no such file",
        ),
        (
            ["--model", "o1", "--dsl", str(CAT_DSL)],
            ADMIN,
            "--model o1 needs a --dsl FILE before it",
        ),
        (["--dsl"], {}, "--dsl needs a value"),
    ],
)
def test_dsl_argument_errors(tmp_path: Path, args: list[str], extra: dict, message: str) -> None:
    result = run_script(args, _env(tmp_path, **extra), cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr


def test_failed_provisioning_starts_nothing(tmp_path: Path) -> None:
    venv = make_fake_venv(tmp_path / "venv", bridge_mode="exit3")  # `provision` fails too
    env = _env(
        tmp_path,
        BRIDGE_VENV=str(venv),
        BRIDGE_SKIP_INSTALL="1",
        DIFY_API_URL="http://127.0.0.1:9/v1",
        **ADMIN,
    )
    result = run_script(["--dsl", str(CAT_DSL), "--port", str(free_port())], env, cwd=tmp_path)
    assert result.returncode != 0
    assert "provisioning failed (see the message above); nothing was started" in result.stderr
    assert "starting:" not in result.stderr
    assert not marked_processes(env[MARKER_VAR])
