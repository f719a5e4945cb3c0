"""Processes a benchmark run starts side by side: the Dify stand-in, bridges, dify2openai."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its children (granian's workers)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
        except (OSError, IndexError):
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _wait_http(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=1.0)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def started(
    cmd: list[str], ready_url: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> Iterator[subprocess.Popen]:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=full_env, start_new_session=True, stdout=subprocess.DEVNULL
    )
    try:
        _wait_http(ready_url)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def standin() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with started(
        [sys.executable, "-m", "tests.support.standin", "--port", str(port)],
        f"{url}/_standin/stats",
    ):
        yield url


def bridge_env(dify_url: str) -> dict[str, str]:
    return {
        "DIFY_API_URL": f"{dify_url}/v1",
        "BRIDGE_STORE": "memory://",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning"),
        "LOG_FORMAT": "json",
    }


@contextlib.contextmanager
def bridge(
    dify_url: str,
    *,
    source: Path = ROOT,
    server: str = "serve",
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, int]]:
    """A bridge process from `source` (a checkout of any revision); yields (URL, pid).
    `serve` is the shipped entry point (`dify-bridge serve`: uvicorn with the bridge's edge
    guards); `uvicorn` and `granian` serve the bare app factory."""
    port = free_port()
    env = {**bridge_env(dify_url), "PYTHONPATH": str(source), **(env or {})}
    if server == "serve":
        cmd = [sys.executable, "-m", "bridge.cli", "serve", "--port", str(port)]
        cmd += ["--workers", str(workers)] if workers > 1 else []
    elif server == "granian":
        cmd = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--log-level",
            "warning",
            "bridge.cli:app_factory",
        ]
    else:
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "bridge.cli:app_factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    url = f"http://127.0.0.1:{port}"
    with started(cmd, f"{url}/healthz", env, cwd=source) as proc:
        yield url, proc.pid


@contextlib.contextmanager
def dify2openai(dify_url: str, checkout: Path) -> Iterator[tuple[str, int]]:
    """fatwang2/dify2openai (Node/Express), the adapter users come from; yields (URL, pid)."""
    port = free_port()
    env = {"DIFY_API_URL": f"{dify_url}/v1", "BOT_TYPE": "Chat", "PORT": str(port)}
    url = f"http://127.0.0.1:{port}"
    with started(["node", "app.js"], f"{url}/v1/models", env, cwd=checkout) as proc:
        yield url, proc.pid
