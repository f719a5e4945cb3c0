"""Helpers of the launcher tests: stand-in executables, the launcher run as its own process,
and checks that a process is gone (through /proc or os.kill, no psutil)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.collected import CollectedProcess

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FAKE_CLOUDFLARED = HERE / "fake_cloudflared.py"
FAKE_BRIDGE = HERE / "fake_bridge.py"
BRIDGE_COMMAND = [sys.executable, str(FAKE_BRIDGE)]


def install_fake_cloudflared(bin_dir: Path) -> Path:
    """`cloudflared` in `bin_dir`: the Python stand-in behind a shebang of this interpreter."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    target = bin_dir / "cloudflared"
    target.write_text(f"#!{sys.executable}\n" + FAKE_CLOUDFLARED.read_text())
    target.chmod(0o755)
    return target


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by its new parent, counts as gone)."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            text = stat.read_text()
        except OSError:
            return False
        return text[text.rindex(")") + 2] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    """The pids still alive after up to `timeout` seconds (bounded wait, not a timing check)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


_DRIVER = """
import json, sys
from bridge.launch.start import Launch, StartOptions
spec = json.loads(sys.argv[1])
spec["options"]["dsl"] = [__import__("pathlib").Path(p) for p in spec["options"].get("dsl", [])]
sys.exit(Launch(StartOptions(**spec["options"]), command=spec["command"]).run())
"""


class Launcher(CollectedProcess):
    """The launcher in a process of its own (signals are per process), output collected."""

    def __init__(
        self,
        options: dict[str, Any],
        env: dict[str, str],
        cwd: Path,
        command: list[str] | None = None,
        recorded: tuple[Path, ...] = (),
    ) -> None:
        self.recorded = recorded  # stand-ins' record files: teardown's safety net
        spec = json.dumps({"options": options, "command": command or BRIDGE_COMMAND})
        super().__init__([sys.executable, "-c", _DRIVER, spec], env=env, cwd=cwd, name="launcher")

    def kill(self) -> None:
        """Teardown's last resort, also for the stand-ins a failed test may have left."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for path in self.recorded:
            for record in records(path):
                for pid in (record["pid"], record["child"]):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)


def launch_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No bridge settings from the developer's shell; a private cache and data folder."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BRIDGE_", "DIFY_", "FAKE_")) and k != "PYTEST_CURRENT_TEST"
    }
    env.update(
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        BRIDGE_DATA_DIR=str(tmp_path / "data"),
        BRIDGE_STORE="memory://",
        BRIDGE_STOP_GRACE="5",
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env
