"""Shared helpers for the ops tests: run scripts/startup.sh, fake venvs, leftover-process checks."""

from __future__ import annotations

import contextlib
import os
import signal
import site
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from tests.support.collected import CollectedProcess

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "startup.sh"
FAKE_BIN = Path(__file__).resolve().parent / "fake_bin"
MARKER_VAR = "DIFY_BRIDGE_OPS_TEST_MARKER"

# Variables of the bridge and of startup.sh that must not leak from the developer's shell.
_SCRUB = (
    "DIFY_API_URL",
    "DIFY_API_KEY",
    "DIFY_PUBLIC_URL",
    "BRIDGE_HOST",
    "BRIDGE_PORT",
    "BRIDGE_API_KEYS",
    "BRIDGE_MODEL_NAME",
    "BRIDGE_CONFIG",
    "BRIDGE_PASSTHROUGH",
    "BRIDGE_STORE",
    "BRIDGE_VENV",
    "BRIDGE_SKIP_INSTALL",
    "BRIDGE_CLOUDFLARED",
    "BRIDGE_CLOUDFLARED_URL",
    "BRIDGE_CLOUDFLARED_VERSION",
)


def script_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for startup.sh: no bridge settings from outside, a private cache,
    an in-memory store, and a marker variable every process it starts inherits."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        TMPDIR=str(tmp_path),
        BRIDGE_STORE="memory://",
        BRIDGE_STOP_GRACE="5",
        **{MARKER_VAR: uuid.uuid4().hex},
    )
    env.update(extra)
    return env


def run_script(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# Runs bash with SIGINT and SIGTERM at their default disposition. A test run started with SIGINT
# ignored (`nohup`, `scripts/test.sh &` from a non-interactive shell, some CI runners) passes
# that on to every child, and bash cannot trap a signal that was ignored when it started, so
# the script's Ctrl-C handling could not be tested. Reset in a tiny exec wrapper rather than
# a preexec_fn, which is unsafe in a process with threads (the test servers run in threads).
_WITH_DEFAULT_SIGNALS = (
    "import os, signal, sys\n"
    "for sig in (signal.SIGINT, signal.SIGTERM):\n"
    "    signal.signal(sig, signal.SIG_DFL)\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)


class Running(CollectedProcess):
    """startup.sh running in the background (its own session), output collected by a thread."""

    poll_interval = 0.1

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.env = env
        argv = [sys.executable, "-c", _WITH_DEFAULT_SIGNALS, "bash", str(SCRIPT), *args]
        # start_new_session (CollectedProcess): the session id lets teardown find every descendant
        super().__init__(argv, env=env, cwd=cwd, name="startup.sh")

    def kill_everything(self) -> None:
        """Last-resort teardown: SIGKILL whatever still carries our marker or session."""
        for pid in marked_processes(self.env[MARKER_VAR]) | session_members(self.proc.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def _proc_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def marked_processes(marker: str) -> set[int]:
    """PIDs of live processes whose environment carries `marker` (inherited from startup.sh,
    so this also finds children that were re-parented after their parent died)."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found = set()
    for pid in _proc_pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            state = _stat_fields(pid)[0]
        except OSError:
            continue
        if needle in environ.split(b"\0") and state != "Z":
            found.add(pid)
    return found


def session_members(sid: int) -> set[int]:
    members = set()
    for pid in _proc_pids():
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            members.add(pid)
    return members


def process_group(pid: int) -> int:
    return int(_stat_fields(pid)[2])


def _stat_fields(pid: int) -> list[str]:
    # /proc/PID/stat: "pid (comm) state ppid pgrp session ..."; comm may contain spaces.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()


def make_fake_venv(root: Path, bridge_mode: str = "serve") -> Path:
    """A venv-shaped folder for startup.sh tests that must not depend on the real bridge
    serving: bin/python is the test interpreter (made a venv of its own by a pyvenv.cfg, with
    the test environment's packages on its path), bin/dify-bridge a stand-in.

    `dify-bridge start` runs the real launcher (bridge/launch/), which starts the bridge as
    `<venv>/bin/dify-bridge serve`, i.e. the stand-in again: bridge_mode "serve" answers 200 on
    every GET (so /healthz) and spawns a child `sleep` in its process group; "exit3" exits
    with status 3 at once. With FAKE_BRIDGE_RECORD=FILE `serve` writes its arguments and
    DIFY_API_URL there as JSON."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    # A venv of its own, so the launcher's sys.executable is this bin/python and the bridge
    # it starts is the stand-in beside it; the real packages come in through a .pth file.
    base_bin = Path(sys.base_prefix) / ("Scripts" if os.name == "nt" else "bin")
    (root / "pyvenv.cfg").write_text(
        f"home = {base_bin}\ninclude-system-site-packages = false\n"
        f"version = {'.'.join(map(str, sys.version_info[:3]))}\n"
    )
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_dir = root / "lib" / version / "site-packages"
    site_dir.mkdir(parents=True)
    (site_dir / "outer-env.pth").write_text(
        "".join(f"import site; site.addsitedir({d!r})\n" for d in site.getsitepackages())
        + f"import sys; sys.path.append({str(REPO)!r})\n"
    )
    bridge = bin_dir / "dify-bridge"
    bridge.write_text(
        f"#!{bin_dir / 'python'}\n"
        + textwrap.dedent(
            f"""
            import http.server, subprocess, sys
            if sys.argv[1:2] != ["serve"]:
                from bridge.cli import main
                sys.exit(main())
            if {bridge_mode!r} == "exit3":
                print("fake bridge: failing on purpose", file=sys.stderr)
                sys.exit(3)
            import json, os
            args = sys.argv[1:]
            port = int(args[args.index("--port") + 1])
            if os.environ.get("FAKE_BRIDGE_RECORD"):
                with open(os.environ["FAKE_BRIDGE_RECORD"], "w") as f:
                    json.dump({{"args": args, "DIFY_API_URL": os.environ.get("DIFY_API_URL")}}, f)
            subprocess.Popen(["sleep", "3600"])  # a grandchild that only a group kill reaches

            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b'{{"status":"ok"}}')

                def log_message(self, *args):
                    pass

            http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
            """
        )
    )
    bridge.chmod(0o755)
    return root
