"""Small network helpers of the launcher: is a port taken, does something listen yet, the
status of a URL, and downloads. Standard library only: they run before anything else."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import urllib.error
import urllib.request
from pathlib import Path

# urllib follows the proxy variables like curl did; a User-Agent because GitHub's API wants one.
_HEADERS = {"User-Agent": "dify-openai-bridge-launcher"}


def _request(url: str) -> urllib.request.Request:
    # Only http(s): a file:// or custom scheme in an environment variable is refused.
    if not url.lower().startswith(("http://", "https://")):
        raise OSError(f"not an http(s) URL: {url}")
    return urllib.request.Request(url, headers=_HEADERS)  # noqa: S310 - scheme checked above


def loopback_for(host: str) -> str:
    """Where the launcher (and cloudflared) reach a server bound to `host`: a wildcard bind is
    reachable on loopback; a bare IPv6 address needs brackets in a URL."""
    if host in ("", "0.0.0.0", "::", "[::]"):  # noqa: S104 - where to connect, not a bind
        return "127.0.0.1"
    if ":" in host:
        return "[" + host.strip("[]") + "]"
    return host


def listening(host: str, port: int, timeout: float = 1.0) -> bool:
    """Something accepts connections there. Only a TCP connect, no HTTP request: the bridge
    logs every request, and the launcher's own polls must not clutter the terminal."""
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(url: str, timeout: float = 3.0) -> int | None:
    """The HTTP status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(_request(url), timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def fetch_bytes(url: str, timeout: float = 30.0, limit: int = 1 << 20) -> bytes:
    """A small document (release metadata); raises OSError when it cannot be had."""
    try:
        with urllib.request.urlopen(_request(url), timeout=timeout) as response:  # noqa: S310
            return response.read(limit)
    except ValueError as exc:  # a malformed URL
        raise OSError(str(exc)) from exc


def download(url: str, dest: Path, timeout: float = 30.0) -> None:
    """Download to `dest` through a `.part` file, so an interrupted download never leaves a
    truncated file under the final name. Raises OSError."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with (
            urllib.request.urlopen(_request(url), timeout=timeout) as response,  # noqa: S310
            part.open("wb") as out,
        ):
            shutil.copyfileobj(response, out)
        os.replace(part, dest)
    except ValueError as exc:
        raise OSError(str(exc)) from exc
    finally:
        with contextlib.suppress(OSError):
            part.unlink()
