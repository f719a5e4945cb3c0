"""Child processes of `dify-bridge start`, each in a process group of its own, so that stopping
one stops everything it started too (uvicorn workers, a wrapper script's children).

POSIX: `process_group=0` makes the child a group leader; stop = SIGTERM to the whole group,
then SIGKILL after the grace period. Windows: CREATE_NEW_PROCESS_GROUP; stop = CTRL_BREAK_EVENT
(uvicorn and cloudflared shut down on it), then `taskkill /T /F`, which ends the whole tree.
A group of its own also keeps a terminal's Ctrl-C away from the children: the launcher gets it
and stops them in order (the tunnel before the bridge it points at).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

WINDOWS = os.name == "nt"


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> int | None:
        """The exit code once the process itself has exited (its group may live on)."""
        return self.proc.poll()

    def group_alive(self) -> bool:
        """Anything of the group still running (the leader is reaped first, so a zombie
        leader does not count)."""
        if self.proc.poll() is None:
            return True
        if WINDOWS:
            return False  # taskkill /T already took the tree with it
        try:
            os.killpg(self.proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    stdout: IO[Any] | int | None = None,
    stderr: IO[Any] | int | None = None,
    cwd: Path | None = None,
) -> Child:
    kwargs: dict[str, Any] = {}
    if WINDOWS:
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    else:
        kwargs["process_group"] = 0
    proc = subprocess.Popen(  # noqa: S603 - argv built by the launcher, no shell
        list(argv),
        stdin=subprocess.DEVNULL,  # a background group reading the terminal would be stopped
        stdout=stdout,
        stderr=stderr,
        env=dict(env),
        cwd=cwd,
        **kwargs,
    )
    return Child(name, proc)


def _signal_group(child: Child, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)


def terminate(child: Child) -> None:
    if WINDOWS:
        if child.proc.poll() is None:
            child.proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        return
    _signal_group(child, signal.SIGTERM)


def kill(child: Child) -> None:
    if WINDOWS:
        if child.proc.poll() is None:
            subprocess.run(  # noqa: S603 - fixed argv, no shell
                ["taskkill", "/T", "/F", "/PID", str(child.pid)],  # noqa: S607 - a system tool
                capture_output=True,
                check=False,
            )
        return
    _signal_group(child, signal.SIGKILL)


def stop_all(
    children: Sequence[Child],
    grace: float,
    *,
    hurry: Callable[[], bool] = lambda: False,
    say: Callable[[str], None] = lambda _line: None,
) -> None:
    """Stop every child's group, newest first, and wait until each group is gone: SIGTERM,
    then SIGKILL after `grace` seconds (at once when `hurry()` turns true: a second Ctrl-C)."""
    for child in reversed(children):
        terminate(child)
    for child in children:
        deadline = time.monotonic() + grace
        while child.group_alive() and time.monotonic() < deadline and not hurry():
            time.sleep(0.05)
        if child.group_alive():
            if not hurry():
                say(f"{child.name} (pid {child.pid}) did not stop within {grace:g}s; killing it")
            kill(child)
            deadline = time.monotonic() + 5
            while child.group_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=1)  # reap it
