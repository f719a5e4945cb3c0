"""The cloudflared quick tunnel: start it towards the bridge and read its public URL.

cloudflared prints the URL in a box on stderr ("Your quick Tunnel has been created! …
https://<words>.trycloudflare.com"). Its output goes to a log file, which the user can read
(the path is printed) and the launcher scans; nothing of it reaches the terminal.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from bridge.launch.children import Child, spawn
from bridge.launch.errors import LaunchError

_URL = re.compile(r"https://[a-z0-9-]+\.trycloudflare\.com")


def tunnel_url(text: str) -> str | None:
    """The quick tunnel's URL in cloudflared's output. api.trycloudflare.com shows up in its
    error lines ("failed to request quick Tunnel: Post https://api.trycloudflare.com/…"); it is
    not a tunnel."""
    for match in _URL.finditer(text):
        if not match.group(0).startswith("https://api."):
            return match.group(0)
    return None


def start_tunnel(
    cloudflared: Path, local_url: str, log_path: Path, env: Mapping[str, str]
) -> Child:
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        return spawn(
            "cloudflared",
            [str(cloudflared), "tunnel", "--no-autoupdate", "--url", local_url],
            env=env,
            stdout=log,
            stderr=log,
        )


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_for_url(
    child: Child,
    log_path: Path,
    timeout: float,
    *,
    say: Callable[[str], None],
    poll: float = 0.2,
) -> str:
    """The public URL once cloudflared printed it; LaunchError (with cloudflared's last lines
    shown) when it exits first or stays silent for `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = tunnel_url(log_path.read_text(errors="replace"))
        except OSError:
            found = None
        if found:
            return found
        if child.exited() is not None:
            found = tunnel_url(log_path.read_text(errors="replace"))
            if found:  # printed just before it exited: still gone, say so below
                raise LaunchError(f"cloudflared exited right after printing {found}")
            say(_tail(log_path))
            raise LaunchError(
                "cloudflared exited before printing a trycloudflare.com URL "
                "(its last lines are above)"
            )
        if time.monotonic() >= deadline:
            say(_tail(log_path))
            raise LaunchError(
                f"no trycloudflare.com URL from cloudflared within {timeout:g}s "
                "(BRIDGE_TUNNEL_TIMEOUT); no network to Cloudflare?"
            )
        time.sleep(poll)
