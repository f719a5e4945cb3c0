"""Three bridge processes behind a real haproxy, with one redis-server and the emulator as a
process of its own — the shape of a Kubernetes Service in front of a Deployment, on loopback.

haproxy balances round-robin and health-checks every replica on ``/readyz``; a replica whose
check fails (or whose port refuses, once SIGTERM made uvicorn stop listening) gets no new
requests, and a request refused at connect time is sent to another replica.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.recordings import DSL_DIR
from tests.support.redis_server import RedisServer, start_redis_server
from tests.support.servers import free_port

REPLICAS = 3
SHUTDOWN_GRACE = 20.0
SERVED_BY = "X-Served-By"

_HAPROXY_CONFIG = """\
global
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout queue 10s
    # A replica busy with a burst may answer its check slowly; that is not a failure.
    timeout check 5s
    # A request refused at connect time, or whose connection the server closed before
    # answering (a replica going away), is sent again, to another replica.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
    # One request per server connection: none is sent on a connection a draining replica
    # is about to close.
    option http-server-close

frontend bridge
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    http-response set-header {served_by} %s
{servers}
"""


def wait_until(condition, *, within: float, what: str, every: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` (bounded: a broken set-up fails instead of hanging)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if condition():
                return
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Process:
    """A child process with its output in a file."""

    command: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = SHUTDOWN_GRACE + 10) -> None:
        if self.process is None:
            return
        self.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Cluster:
    workdir: Path
    redis: RedisServer | None = None
    emulator: Process | None = None
    emulator_port: int = field(default_factory=free_port)
    bridges: list[Process] = field(default_factory=list)
    bridge_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(REPLICAS)])
    haproxy: Process | None = None
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    def bridge_url(self, replica: int) -> str:
        return f"http://127.0.0.1:{self.bridge_ports[replica]}"

    def start(self) -> None:
        self.redis = start_redis_server()
        self.emulator = Process(
            [
                *(sys.executable, "-m", "bridge.cli", "emulator"),
                *("--port", str(self.emulator_port), "--dsl-dir", str(DSL_DIR)),
            ],
            self.workdir / "emulator.log",
        )
        self.emulator.start()
        # Everything starts at once (imports take most of the time); a bridge is ready once
        # the emulator answers its probe.
        self.bridges = [self._bridge(n) for n in range(REPLICAS)]
        for bridge in self.bridges:
            bridge.start()
        for replica in range(REPLICAS):
            self._wait_ready(replica)
        self._start_haproxy()

    def _bridge(self, replica: int) -> Process:
        env = {
            "DIFY_API_URL": f"{self.emulator_url}/v1",
            "BRIDGE_STORE": self.redis.url if self.redis else "",
            "BRIDGE_SHUTDOWN_GRACE": str(SHUTDOWN_GRACE),
            "BRIDGE_READY_CACHE_TTL": "0.5",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
        }
        command = [sys.executable, "-m", "bridge.cli", "serve"]
        command += ["--port", str(self.bridge_ports[replica])]
        return Process(command, self.workdir / f"bridge-{replica}.log", env)

    def start_bridge(self, replica: int) -> None:
        self.bridges[replica].start()
        self._wait_ready(replica)

    def _wait_ready(self, replica: int) -> None:
        url = self.bridge_url(replica)
        wait_until(
            lambda: httpx.get(f"{url}/readyz", timeout=1).status_code == 200,
            within=30,
            what=f"bridge {replica} to be ready",
        )

    def _start_haproxy(self) -> None:
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        servers = "\n".join(
            f"    server replica{n} 127.0.0.1:{port} check inter 500ms fall 2 rise 2"
            for n, port in enumerate(self.bridge_ports)
        )
        config = self.workdir / "haproxy.cfg"
        config.write_text(
            _HAPROXY_CONFIG.format(port=self.port, served_by=SERVED_BY, servers=servers)
        )
        # -db: stay in the foreground, so the test owns the process.
        self.haproxy = Process([haproxy, "-db", "-f", str(config)], self.workdir / "haproxy.log")
        self.haproxy.start()
        wait_until(self.all_replicas_up, within=30, what="haproxy to see every replica up")

    def all_replicas_up(self) -> bool:
        """Each replica answers through the balancer (round-robin reaches them all)."""
        seen = set()
        for _ in range(REPLICAS * 3):
            response = httpx.get(f"{self.url}/healthz", timeout=2)
            seen.add(response.headers.get(SERVED_BY))
        return seen == {f"replica{n}" for n in range(REPLICAS)}

    def journal(self) -> list[dict]:
        return httpx.get(f"{self.emulator_url}/_emulator/journal", timeout=10).json()

    def stop(self) -> None:
        for process in [self.haproxy, *self.bridges, self.emulator]:
            if process is not None:
                process.stop()
        if self.redis is not None:
            self.redis.stop()


@contextlib.contextmanager
def running_cluster(workdir: Path) -> Iterator[Cluster]:
    cluster = Cluster(workdir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
