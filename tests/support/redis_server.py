"""Run a throwaway ``redis-server`` on 127.0.0.1 for tests.

``start_redis_server()`` picks a free port, starts the server without persistence, waits until
it answers PING and returns a handle; ``stop()`` kills it. Callers that need the server to
die mid-test (to check how the bridge copes) call ``stop()`` themselves.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

REDIS_SERVER = "redis-server"


class RedisServerUnavailable(RuntimeError):
    """``redis-server`` could not be started."""


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def url_for_db(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        """Kill the server (no graceful shutdown: a crash is what tests want to see)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def redis_server_binary() -> str | None:
    """Path of ``redis-server``, or ``None`` when it is not installed."""
    return shutil.which(REDIS_SERVER)


def start_redis_server(*, attempts: int = 5, ready_timeout: float = 10.0) -> RedisServer:
    """Start ``redis-server`` on a free 127.0.0.1 port and wait until it answers PING.

    Retries on another port when the chosen one was taken in the meantime. Raises
    :class:`RedisServerUnavailable` when the binary is missing or never becomes ready.
    """
    binary = redis_server_binary()
    if binary is None:
        raise RedisServerUnavailable(f"{REDIS_SERVER} is not installed")
    last_output = b""
    for _ in range(attempts):
        port = _free_port()
        command = [binary, "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        # The log goes to a file, not a pipe: nobody reads it while the server runs, and a
        # full pipe would block the server. The child keeps its own descriptor.
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            server = RedisServer(port=port, process=process)
            if _wait_until_ready(server, ready_timeout):
                return server
            server.stop()
            log.seek(0)
            last_output = log.read()
    raise RedisServerUnavailable(
        f"{REDIS_SERVER} did not start after {attempts} attempts: {last_output[-500:]!r}"
    )


@contextlib.contextmanager
def running_redis_server() -> Iterator[RedisServer]:
    """``start_redis_server()`` as a context manager that always stops the server."""
    server = start_redis_server()
    try:
        yield server
    finally:
        server.stop()


def _wait_until_ready(server: RedisServer, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False  # exited, e.g. the port was taken
        if _answers_ping(server.port):
            return True
        time.sleep(0.02)
    return False


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
