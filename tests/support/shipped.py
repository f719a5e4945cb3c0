"""The product as users run it: `dify-bridge serve` as its own process, default settings, on a
free port, in front of a Dify that is also its own process.

Behaviour that depends on the server — how a stream ends, disconnects, timeouts, keepalives,
edge limits — is tested through this, not only through an in-thread app: the in-thread
fixtures share a loop and a process with the test and can hide what uvicorn, the guarded
protocol and the real start-up do (issue 17, item 3).

    with upstream_process("scripted") as dify, shipped_bridge(dify) as bridge:
        httpx.post(f"{bridge.url}/v1/chat/completions", ...)
        bridge.log_lines()  # the JSON log it wrote
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[2]
# Settings that come from the environment of whoever runs the tests must not leak in: the
# bridge under test sees only what the test gives it.
_SCRUB_PREFIXES = ("BRIDGE_", "DIFY_", "LOG_")
START_TIMEOUT = 30.0


def _entry_point() -> list[str]:
    """The installed console script, as users run it; `python -m bridge.cli` if the project
    is not installed into this interpreter's environment."""
    script = Path(sys.executable).with_name("dify-bridge")
    if script.exists():
        return [str(script)]
    found = shutil.which("dify-bridge")
    return [found] if found else [sys.executable, "-m", "bridge.cli"]


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def wait_until_healthy(
    url: str, proc: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.05)
    raise RuntimeError(f"not healthy within {timeout:g}s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class ShippedBridge:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path) -> None:
        self.url = url
        self.proc = proc
        self.log = log

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON lines the bridge logged so far (anything else is kept as `raw`)."""
        lines = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"raw": line})
        return lines


@contextlib.contextmanager
def shipped_bridge(
    dify_url: str | None = None, *, serve_args: tuple[str, ...] = (), **settings: str
) -> Iterator[ShippedBridge]:
    """`dify-bridge serve --port N` with default settings (plus `settings`, env names, and
    `serve_args`, e.g. `("--workers", "2")`), its working directory a fresh temporary folder
    (the default SQLite store lands there)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="shipped-bridge-") as work:
        log = Path(work) / "bridge.log"
        env = clean_env(**settings)
        env["PYTHONPATH"] = str(REPO)  # this checkout, even if another one is installed
        if dify_url is not None:
            env["DIFY_API_URL"] = dify_url
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*_entry_point(), "serve", "--port", str(port), *serve_args],
                cwd=work,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_healthy(f"{url}/healthz", proc, log)
            yield ShippedBridge(url, proc, log)
        finally:
            _stop(proc)


@contextlib.contextmanager
def upstream_process(kind: str, *args: str) -> Iterator[str]:
    """A Dify stand-in as its own process; yields its `/v1` base URL.

    - `scripted`: tests.support.scripted_dify (one script per app key, then hold or close);
    - `standin`: tests.support.standin (floods, silences, faults);
    - `emulator`: `dify-bridge emulator` (the DSL apps in dify-dsl/), `args` passed on."""
    port = free_port()
    commands = {
        "scripted": [sys.executable, "-m", "tests.support.scripted_dify", "--port", str(port)],
        "standin": [sys.executable, "-m", "tests.support.standin", "--port", str(port)],
        "emulator": [*_entry_point(), "emulator", "--port", str(port), *args],
        # tests.support.fault_dify: reads from a Dify behind it, refuses every run.
        "fault": [sys.executable, "-m", "tests.support.fault_dify", "--port", str(port), *args],
    }
    probes = {
        "scripted": "/_scripted/stats",
        "standin": "/_standin/stats",
        "emulator": "/v1/",
        "fault": "/_fault/stats",
    }
    with tempfile.TemporaryDirectory(prefix=f"{kind}-") as work:
        log = Path(work) / "upstream.log"
        env = clean_env(PYTHONPATH=str(REPO))
        with log.open("wb") as out:
            proc = subprocess.Popen(
                commands[kind],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}{probes[kind]}", proc, log)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            _stop(proc)


class EmulatorProcess:
    """`dify-bridge emulator` as its own process at a fixed port, which a test may kill
    (SIGKILL: a crashed Dify, connections refused) and start again at the same port."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.args = args
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None
        self._work = tempfile.TemporaryDirectory(prefix="emulator-")
        self.log = Path(self._work.name) / "upstream.log"

    def start(self) -> EmulatorProcess:
        command = [*_entry_point(), "emulator", "--port", str(self.port), *self.args]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=REPO,
                env=clean_env(PYTHONPATH=str(REPO)),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_until_healthy(f"http://127.0.0.1:{self.port}/v1/", self.proc, self.log)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
        self._work.cleanup()

    def runs(self, path_suffix: str = "chat-messages") -> int:
        """Runs this emulator received (its journal: POSTs to the run endpoint)."""
        journal = httpx.get(f"http://127.0.0.1:{self.port}/_emulator/journal", timeout=10).json()
        return sum(
            1 for e in journal if e["method"] == "POST" and e["path"].endswith(path_suffix)
        )


@contextlib.contextmanager
def emulator_processes(count: int, *args: str) -> Iterator[list[EmulatorProcess]]:
    started: list[EmulatorProcess] = []
    try:
        for _ in range(count):
            started.append(EmulatorProcess(*args).start())
        yield started
    finally:
        for emulator in started:
            emulator.stop()
