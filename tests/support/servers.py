"""Run ASGI apps as real HTTP servers on 127.0.0.1 for integration tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(app: Any, port: int | None = None, *, limits: Any = None) -> Iterator[str]:
    """Serve `app` with uvicorn in a background thread; yield its base URL (no trailing slash).

    `limits` (a `bridge.http.edge_limits.EdgeLimits`): serve it the way `dify-bridge serve` does, with
    the bridge's guarded HTTP protocol and those limits."""
    port = port or free_port()
    options: dict[str, Any] = dict(
        host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
    )
    if limits is not None:
        from bridge.http.server import BridgeServerConfig

        config: uvicorn.Config = BridgeServerConfig(app, edge_limits=limits, **options)
    else:
        config = uvicorn.Config(app, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
