"""Ctrl-C / SIGTERM / SIGHUP (SIGBREAK on Windows) for `dify-bridge start`.

The first signal raises `Interrupted` in the main thread, so whatever the launcher is waiting
for (a download, `docker compose up`, the tunnel URL) ends and its `finally` stops the children.
Inside `shielded()` (while a child is being started and recorded) the signal is held back
until the block ends, so no child can be started without being known. A second signal while
stopping asks to hurry: groups still alive are killed at once instead of after the grace.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType


class Interrupted(Exception):  # not an error: Ctrl-C and friends
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name.removeprefix("SIG")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a death by this signal


def _handled() -> list[signal.Signals]:
    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")
    return [getattr(signal, n) for n in names if hasattr(signal, n)]


class Interrupts:
    def __init__(self) -> None:
        self._held: int | None = None
        self._shield = 0
        self.stopping = False
        self.hurry = False
        self._previous: dict[signal.Signals, object] = {}

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping:
            self.hurry = True
            return
        if self._shield:
            self._held = self._held or signum
            return
        self.stopping = True
        raise Interrupted(signum)

    def install(self) -> None:
        for sig in _handled():
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        self._shield += 1
        try:
            yield
        finally:
            self._shield -= 1
        if not self._shield and self._held is not None:
            signum, self._held = self._held, None
            self.stopping = True
            raise Interrupted(signum)
