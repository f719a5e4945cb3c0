"""The uvicorn server the bridge runs on: `server_config()` builds the uvicorn config
`dify-bridge serve` runs (also with `--workers`: the config, limits included, is pickled into
each worker), speaking `GuardedHttpProtocol` (bridge.http.guarded: request deadlines, a head
size bound, a connection cap, lingering close) with the `EdgeLimits` of bridge.http.edge_limits.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from bridge.http.edge_limits import EdgeLimits, edge_limits
from bridge.http.guarded import GuardedHttpProtocol
from bridge.logging import uvicorn_log_config
from bridge.settings import Settings


class BridgeServerConfig(uvicorn.Config):
    """uvicorn's config plus the edge limits the protocol reads (pickled into workers)."""

    def __init__(self, app: Any, *, edge_limits: EdgeLimits, **kwargs: Any) -> None:
        kwargs.setdefault("http", GuardedHttpProtocol)
        super().__init__(app, **kwargs)
        self.edge_limits = edge_limits


def server_config(
    app: Any, settings: Settings, *, limits: EdgeLimits | None = None, **kwargs: Any
) -> BridgeServerConfig:
    """The uvicorn config for serving `app` (an ASGI app or an import string)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        # uvicorn's own lines go through the bridge's structlog set-up (JSON, masked).
        "log_config": uvicorn_log_config(),
        "access_log": False,
        # On SIGTERM uvicorn stops accepting and lets running requests finish for this long;
        # then it cancels them and bridge.http.access ends each stream with an error chunk.
        "timeout_graceful_shutdown": settings.shutdown_grace,
    }
    options.update(kwargs)
    return BridgeServerConfig(app, edge_limits=limits or edge_limits(settings), **options)


def run(config: BridgeServerConfig) -> None:
    """Run the server like `uvicorn.run` does: one process, workers, or the reloader."""
    from uvicorn.supervisors import ChangeReload, Multiprocess

    server = uvicorn.Server(config)
    try:
        if config.should_reload:
            ChangeReload(config, target=server.run, sockets=[config.bind_socket()]).run()
        elif config.workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    if not server.started and not config.should_reload and config.workers == 1:
        sys.exit(STARTUP_FAILURE)  # a bind or start-up failure must not exit 0
