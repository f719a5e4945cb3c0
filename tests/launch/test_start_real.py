"""`dify-bridge start` with the real bridge (demo mode): the banner comes out clean, in one
block, with none of the launcher's own readiness polls in the bridge's log, and a first
`--tunnel` run makes its key file without any error text (issue 17)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.servers import free_port

from .support import Launcher, install_fake_cloudflared, launch_env, records, wait_gone

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and stand-ins")

REAL_BRIDGE = [sys.executable, "-m", "bridge.cli"]


def _banner_block(output: str) -> list[str]:
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("Bridge listening on"))
    last = lines.index("Press Ctrl-C to stop.")
    return lines[first : last + 1]


def test_banner_is_one_clean_block_without_health_poll_lines(tmp_path: Path) -> None:
    port = free_port()
    launcher = Launcher({"port": port}, launch_env(tmp_path), cwd=tmp_path, command=REAL_BRIDGE)
    try:
        launcher.wait_for("Press Ctrl-C to stop.", timeout=60)
        block = _banner_block(launcher.output)
        # Nothing of the bridge's JSON log and nothing of the launcher's messages inside it.
        assert not [line for line in block if line.startswith(("{", "[start]"))], block
        # The launcher polled readiness with TCP connects: no access line for them at all.
        probe = urllib.request.Request(
            f"http://127.0.0.1:{port}/healthz", headers={"X-Request-Id": "test-probe-1"}
        )
        with urllib.request.urlopen(probe, timeout=10) as response:
            assert response.status == 200
        launcher.wait_for('"test-probe-1"', timeout=10)  # our request is logged…
        health_lines = [line for line in launcher.lines if '"/healthz"' in line]
        assert len(health_lines) == 1, health_lines  # …and it is the only /healthz line
        launcher.proc.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=60) == 143, launcher.output
    finally:
        launcher.kill()


def test_first_tunnel_run_makes_its_key_without_error_text(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    install_fake_cloudflared(bin_dir)
    record = tmp_path / "tunnel.jsonl"
    env = launch_env(tmp_path, PATH=f"{bin_dir}:/usr/bin:/bin", FAKE_CLOUDFLARED_RECORD=str(record))
    del env["BRIDGE_DATA_DIR"]  # the default: ./data, which does not exist yet
    port = free_port()
    launcher = Launcher(
        {"port": port, "tunnel": True},
        env,
        cwd=tmp_path,
        command=REAL_BRIDGE,
        recorded=(record,),
    )
    try:
        launcher.wait_for("Press Ctrl-C to stop.", timeout=60)
        out = launcher.output
        key_file = tmp_path / "data" / "tunnel-api-key"
        assert f"generated an API key for the public tunnel: {key_file}" in out
        assert "No such file or directory" not in out
        key = key_file.read_text().strip()
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert re.search(rf"Key\s*:\s*{re.escape(key)}\s+<-\s*demo mode.*required", out)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=json.dumps(
                {"model": "o1", "messages": [{"role": "user", "content": "hi"}]}
            ).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.load(response)["choices"][0]["message"]["content"] == "喵"
        assert key not in "".join(line for line in launcher.lines if line.startswith("{"))
        (tunnel,) = records(record)
        launcher.proc.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=60) == 130, launcher.output
        assert not wait_gone([tunnel["pid"], tunnel["child"]], timeout=5)
    finally:
        launcher.kill()


def test_start_help_documents_the_download_variables() -> None:
    result = subprocess.run(
        [*REAL_BRIDGE, "start", "--help"], capture_output=True, text=True, check=True
    )
    for name in ("BRIDGE_CLOUDFLARED_URL", "BRIDGE_CLOUDFLARED_SHA256", "BRIDGE_CLOUDFLARED"):
        assert name in result.stdout
