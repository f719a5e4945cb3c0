"""What a client may take before the bridge has seen its whole request (`EdgeLimits`), and the
descriptor limit the connection cap follows: every stream holds two sockets (the client's and
its Dify connection), so the cap is half of what is left after a reserve.
"""

from __future__ import annotations

import resource

import msgspec

from bridge.settings import Settings

# Descriptors kept back from the connection cap: the listening socket, log files, the store
# (SQLite / Redis), Dify control calls, the demo emulator's own sockets.
FD_RESERVE = 256
# Raise the soft descriptor limit towards the hard one up to this (common hard limits are
# 2^20; nothing near that is useful to one process).
FD_TARGET = 65_536


class EdgeLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What a client may take before the bridge has seen its whole request."""

    request_timeout: float = 30.0  # seconds for the head, and again for the body
    max_header_bytes: int = 64 * 1024
    max_connections: int | None = None  # None: connection_cap() of the descriptor limit


def raise_fd_limit(target: int = FD_TARGET) -> int:
    """Raise the soft RLIMIT_NOFILE towards the hard limit; return the soft limit in force.

    Python keeps the soft limit it was started with (often 1024), far below what a bridge
    holding thousands of streams needs; the hard limit is what the operator allowed.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(hard, target)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass  # keep the limit we have; the cap below follows it
    return soft


def connection_cap(fd_limit: int, reserve: int = FD_RESERVE) -> int:
    """Client connections the descriptor limit allows: each may hold a Dify socket too."""
    return max((fd_limit - reserve) // 2, 1)


def edge_limits(settings: Settings, fd_limit: int | None = None) -> EdgeLimits:
    """The limits from settings; the connection cap from the descriptor limit if unset."""
    fd_limit = fd_limit or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return EdgeLimits(
        request_timeout=settings.request_timeout,
        max_header_bytes=settings.max_header_bytes,
        max_connections=settings.max_connections or connection_cap(fd_limit),
    )
