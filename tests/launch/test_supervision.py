"""The launcher as a whole (bridge.launch.start) in a process of its own, with stand-ins for
the bridge and cloudflared that each have a child of their own: Ctrl-C / SIGTERM stop every
process it started, a child that dies takes the rest down, start-up failures leave nothing
behind."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from tests.support.servers import free_port

from .support import Launcher, install_fake_cloudflared, launch_env, records, wait_gone

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and stand-ins")


def _tunnel_run(tmp_path: Path, **extra: str) -> tuple[Launcher, Path, Path]:
    bin_dir = tmp_path / "bin"
    install_fake_cloudflared(bin_dir)
    bridge_record, tunnel_record = tmp_path / "bridge.jsonl", tmp_path / "tunnel.jsonl"
    env = launch_env(
        tmp_path,
        PATH=f"{bin_dir}:/usr/bin:/bin",
        FAKE_BRIDGE_RECORD=str(bridge_record),
        FAKE_CLOUDFLARED_RECORD=str(tunnel_record),
        **extra,
    )
    launcher = Launcher(
        {"port": free_port(), "tunnel": True},
        env,
        cwd=tmp_path,
        recorded=(bridge_record, tunnel_record),
    )
    return launcher, bridge_record, tunnel_record


def _all_pids(bridge_record: Path, tunnel_record: Path) -> list[int]:
    (bridge,), (tunnel,) = records(bridge_record), records(tunnel_record)
    return [bridge["pid"], bridge["child"], tunnel["pid"], tunnel["child"]]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_every_child_and_grandchild(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    launcher, bridge_record, tunnel_record = _tunnel_run(tmp_path)
    try:
        launcher.wait_for("Press Ctrl-C to stop.")
        pids = _all_pids(bridge_record, tunnel_record)
        assert wait_gone(pids, timeout=0) == pids  # all four running
        (bridge,) = records(bridge_record)
        # A public tunnel in demo mode: the bridge was started with the generated key.
        key = (tmp_path / "data" / "tunnel-api-key").read_text().strip()
        assert bridge["keys"] == key
        assert f"Key     : {key}   <- demo mode" in launcher.output
        launcher.proc.send_signal(sig)
        assert launcher.wait() == code, launcher.output
        assert f"{sig.name.removeprefix('SIG')} received, stopping" in launcher.output
        # The launcher waits for what it stopped: nothing may be left once it has exited
        # (a short bounded wait only for the re-parented children to be reaped).
        assert not wait_gone(pids, timeout=5), launcher.output
    finally:
        launcher.kill()


def test_a_dying_tunnel_takes_the_bridge_down(tmp_path: Path) -> None:
    launcher, bridge_record, tunnel_record = _tunnel_run(tmp_path)
    try:
        launcher.wait_for("Press Ctrl-C to stop.")
        pids = _all_pids(bridge_record, tunnel_record)
        (tunnel,) = records(tunnel_record)
        signal_pid = tunnel["pid"]
        os.kill(signal_pid, signal.SIGKILL)
        assert launcher.wait() == 1
        assert f"cloudflared (pid {signal_pid}) exited with code -9; the tunnel is gone" in (
            launcher.output
        )
        assert not wait_gone(pids, timeout=5), launcher.output
    finally:
        launcher.kill()


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("hang", "no trycloudflare.com URL from cloudflared within 1s"),
        ("die", "cloudflared exited before printing a trycloudflare.com URL"),
    ],
)
def test_tunnel_failure_stops_the_bridge(tmp_path: Path, mode: str, message: str) -> None:
    launcher, bridge_record, _ = _tunnel_run(
        tmp_path, FAKE_CLOUDFLARED_MODE=mode, BRIDGE_TUNNEL_TIMEOUT="1"
    )
    try:
        assert launcher.wait() == 1
        assert message in launcher.output
        (bridge,) = records(bridge_record)
        assert not wait_gone([bridge["pid"], bridge["child"]], timeout=5)
        assert "Press Ctrl-C" not in launcher.output
    finally:
        launcher.kill()


def test_bridge_that_fails_to_start(tmp_path: Path) -> None:
    env = launch_env(tmp_path, FAKE_BRIDGE_MODE="exit3")
    launcher = Launcher({"port": free_port()}, env, cwd=tmp_path)
    try:
        assert launcher.wait() == 1
        assert "the bridge exited during start-up (exit code 3)" in launcher.output
        assert "fake bridge: failing on purpose" in launcher.output  # its own words, shown
    finally:
        launcher.kill()


def test_port_in_use_starts_nothing(tmp_path: Path) -> None:
    record = tmp_path / "bridge.jsonl"
    env = launch_env(tmp_path, FAKE_BRIDGE_RECORD=str(record))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        launcher = Launcher({"port": port}, env, cwd=tmp_path)
        try:
            assert launcher.wait() == 1
        finally:
            launcher.kill()
    assert f"port {port} on 127.0.0.1 is already in use; pick another with --port" in (
        launcher.output
    )
    assert not record.exists()


def test_bridge_gets_host_port_config_and_serve_args(tmp_path: Path) -> None:
    record = tmp_path / "bridge.jsonl"
    config = tmp_path / "bridge.yaml"
    config.write_text("model_name: cat\n")
    env = launch_env(tmp_path, FAKE_BRIDGE_RECORD=str(record))
    port = free_port()
    options = {"port": port, "config": str(config), "serve_args": ["--workers", "2"]}
    launcher = Launcher(options, env, cwd=tmp_path, recorded=(record,))
    try:
        launcher.wait_for("Press Ctrl-C to stop.")
        (bridge,) = records(record)
        assert bridge["args"] == [
            "serve", "--host", "127.0.0.1", "--port", str(port),
            "--config", str(config), "--workers", "2",
        ]  # fmt: skip
        assert bridge["keys"] is None  # no tunnel: no generated key
        assert "model: cat" in launcher.output
        launcher.proc.send_signal(signal.SIGTERM)
        assert launcher.wait() == 143
    finally:
        launcher.kill()
