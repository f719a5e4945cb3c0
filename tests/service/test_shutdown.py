"""SIGTERM on a real `dify-bridge serve` process with a stream in flight: the stream finishes
(or, past the grace period, ends with an error chunk and its Dify task is stopped), and the
process exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def start_bridge(emulator_url: str, log_file: Path, grace: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "DIFY_API_URL": f"{emulator_url}/v1",
        "BRIDGE_STORE": "memory://",
        "BRIDGE_SHUTDOWN_GRACE": str(grace),
        "LOG_FORMAT": "json",
    }
    env.pop("BRIDGE_CONFIG", None)
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(log_file.read_text())
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the bridge did not start")


class StreamInFlight:
    """A streamed SlowChat run read in a thread; `answering` is set at its first content."""

    def __init__(self, url: str, sleep: float) -> None:
        self.frames: list[str] = []
        self.answering = threading.Event()
        self.error: BaseException | None = None
        body = {
            "model": "slow",
            "stream": True,
            "messages": [{"role": "user", "content": "hold on"}],
            "inputs": {"sleep": sleep},
        }
        self._thread = threading.Thread(target=self._read, args=(url, body), daemon=True)
        self._thread.start()

    def _read(self, url: str, body: dict) -> None:
        try:
            headers = {"Authorization": "Bearer app-slowchat"}
            with httpx.stream(
                "POST", f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.frames.append(line[6:])
                        if "working on" in line:
                            self.answering.set()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.answering.set()

    def join(self) -> None:
        self._thread.join(timeout=60)

    @property
    def text(self) -> str:
        parts = []
        for frame in self.frames:
            if frame != "[DONE]":
                for choice in json.loads(frame).get("choices", []):
                    parts.append(choice["delta"].get("content") or "")
        return "".join(parts)


@pytest.fixture
def bridge_process(emulator_url: str, tmp_path: Path) -> Iterator:
    started: list[subprocess.Popen] = []

    def start(grace: float) -> str:
        process, url = start_bridge(emulator_url, tmp_path / "bridge.log", grace)
        started.append(process)
        return url

    yield start, started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_lets_a_running_stream_finish_then_exits(bridge_process):
    start, processes = bridge_process
    url = start(grace=30)
    stream = StreamInFlight(url, sleep=2)
    assert stream.answering.wait(30) and stream.error is None
    processes[0].send_signal(signal.SIGTERM)
    stream.join()
    assert stream.error is None
    assert stream.frames[-1] == "[DONE]"
    assert "done (slept 2" in stream.text
    assert processes[0].wait(timeout=30) in (0, -signal.SIGTERM)


def test_past_the_grace_period_a_stream_ends_with_an_error_and_dify_is_stopped(
    bridge_process, emulator_url
):
    start, processes = bridge_process
    url = start(grace=1)
    httpx.delete(f"{emulator_url}/_emulator/journal")
    stream = StreamInFlight(url, sleep=20)
    assert stream.answering.wait(30) and stream.error is None
    processes[0].send_signal(signal.SIGTERM)
    stream.join()
    assert stream.error is None
    assert stream.frames[-1] == "[DONE]"
    assert json.loads(stream.frames[-2])["error"]["code"] == "bridge_shutting_down"
    assert processes[0].wait(timeout=30) in (0, -signal.SIGTERM)
    journal = httpx.get(f"{emulator_url}/_emulator/journal").json()
    assert any(entry["path"].endswith("/stop") for entry in journal)
