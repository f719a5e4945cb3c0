"""A child process in a session of its own whose output (stdout and stderr) a thread collects
line by line, for tests that wait for a line, signal the process and read what it printed
(tests/launch: the launcher; tests/ops: startup.sh)."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path


class CollectedProcess:
    """`argv` running in its own session (signals and teardown reach all it starts)."""

    poll_interval = 0.05  # seconds between looks at the output in wait_for

    def __init__(self, argv: list[str], *, env: dict[str, str], cwd: Path, name: str) -> None:
        self.name = name  # in failure messages
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.proc.poll() is not None:
                self._reader.join(timeout=2)
                if text in self.output:
                    return
                raise AssertionError(
                    f"{self.name} exited ({self.proc.returncode}) before printing {text!r}:\n"
                    + self.output
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {timeout}s:\n{self.output}")
            time.sleep(self.poll_interval)

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code
