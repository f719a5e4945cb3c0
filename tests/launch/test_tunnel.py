"""bridge.launch.tunnel: reading the quick tunnel's URL, with a cloudflared stand-in that
prints one, hangs, dies, or prints only the error naming api.trycloudflare.com."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bridge.launch.children import stop_all
from bridge.launch.errors import LaunchError
from bridge.launch.tunnel import start_tunnel, tunnel_url, wait_for_url

from .support import install_fake_cloudflared, records, wait_gone

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX stand-in (shebang)")

BOX = """2026-01-01T00:00:00Z INF +-------------------------------------------+
2026-01-01T00:00:00Z INF |  Your quick Tunnel has been created! Visit it at:  |
2026-01-01T00:00:00Z INF |  https://quiet-river-42.trycloudflare.com   |
2026-01-01T00:00:00Z INF +-------------------------------------------+
"""
API_ERROR = (
    "2026-01-01T00:00:00Z ERR failed to request quick Tunnel: Post "
    '"https://api.trycloudflare.com/tunnel": dial tcp: no such host\n'
)


@pytest.mark.parametrize(
    ("text", "url"),
    [
        (BOX, "https://quiet-river-42.trycloudflare.com"),
        (API_ERROR, None),  # the API host is not a tunnel
        (API_ERROR + BOX, "https://quiet-river-42.trycloudflare.com"),
        ("", None),
        ("https://evil.example.com/?x=.trycloudflare.com", None),
    ],
)
def test_tunnel_url(text: str, url: str | None) -> None:
    assert tunnel_url(text) == url


def _run(tmp_path: Path, mode: str, timeout: float) -> tuple[str | Exception, list[str], dict]:
    cloudflared = install_fake_cloudflared(tmp_path / "bin")
    record = tmp_path / "record.jsonl"
    env = dict(os.environ, FAKE_CLOUDFLARED_MODE=mode, FAKE_CLOUDFLARED_RECORD=str(record))
    log_path = tmp_path / "cloudflared.log"
    said: list[str] = []
    child = start_tunnel(cloudflared, "http://127.0.0.1:9", log_path, env)
    try:
        result: str | Exception = wait_for_url(child, log_path, timeout, say=said.append)
    except LaunchError as exc:
        result = exc
    finally:
        stop_all([child], grace=5)
    rec = records(record)
    return result, said, {"pid": child.pid, **(rec[0] if rec else {})}


def test_url_is_read_and_the_stand_in_ran_as_told(tmp_path: Path) -> None:
    result, _, rec = _run(tmp_path, "url", timeout=30)
    assert result == "https://some-words-here.trycloudflare.com"
    assert rec["args"] == ["tunnel", "--no-autoupdate", "--url", "http://127.0.0.1:9"]
    assert rec["pgid"] == rec["pid"]  # a process group of its own
    assert not wait_gone([rec["pid"], rec["child"]])  # stopping took its child too


def test_cloudflared_that_dies_is_reported_with_its_last_lines(tmp_path: Path) -> None:
    result, said, _ = _run(tmp_path, "die", timeout=30)
    assert isinstance(result, LaunchError)
    assert "cloudflared exited before printing a trycloudflare.com URL" in result.message
    assert any("api.trycloudflare.com" in line for line in said)  # its last lines, shown


@pytest.mark.parametrize("mode", ["hang", "api"])
def test_cloudflared_without_url_times_out(tmp_path: Path, mode: str) -> None:
    result, said, rec = _run(tmp_path, mode, timeout=1)
    assert isinstance(result, LaunchError)
    assert "no trycloudflare.com URL from cloudflared within 1s" in result.message
    assert not wait_gone([rec["pid"], rec["child"]])
    if mode == "api":
        assert any("api.trycloudflare.com" in line for line in said)
