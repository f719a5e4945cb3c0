"""bridge.launch.cloudflared: found on PATH, or downloaded and checked against the SHA-256 the
release publishes. The network is a local HTTP server serving a fake binary and release data
shaped like GitHub's (a "### SHA256 Checksums:" block in the notes, a `digest` per asset)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import json
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.launch.cloudflared import (
    Published,
    find_cloudflared,
    published,
    release_asset,
    verify,
)
from bridge.launch.errors import LaunchError

from .support import install_fake_cloudflared

posix = pytest.mark.skipif(sys.platform == "win32", reason="the fake binary is a shell script")

FAKE_BINARY = b"#!/bin/sh\necho 'cloudflared version 2099.1.0 (downloaded fake)'\n"
ASSET = release_asset()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _release(body_sha: str | None, digest: str | None = None, asset: str = ASSET) -> dict:
    notes = "Fixes.\n"
    if body_sha:
        notes += f" \n### SHA256 Checksums:\n```\ncloudflared-other: {'0' * 64}\n{asset}: {body_sha}\n```"
    entry = {"name": asset, "browser_download_url": "unused"}
    if digest:
        entry["digest"] = f"sha256:{digest}"
    return {"tag_name": "2099.1.0", "body": notes, "assets": [entry]}


@contextlib.contextmanager
def _serving(files: dict[str, bytes]) -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            data = files.get(self.path)
            self.send_response(200 if data is not None else 404)
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _env(tmp_path: Path, base: str, **extra: str) -> dict[str, str]:
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    return {
        "PATH": str(empty),  # no cloudflared anywhere
        "BRIDGE_CLOUDFLARED_URL": f"{base}/{ASSET}",
        "BRIDGE_CLOUDFLARED_RELEASE_URL": f"{base}/release.json",
        **extra,
    }


@posix
def test_download_verified_against_the_release_notes(tmp_path: Path) -> None:
    release = json.dumps(_release(_sha(FAKE_BINARY))).encode()
    said: list[str] = []
    with _serving({f"/{ASSET}": FAKE_BINARY, "/release.json": release}) as (base, seen):
        found = find_cloudflared(_env(tmp_path, base), tmp_path / "cache", said.append)
    assert found.parent == tmp_path / "cache"
    assert found.read_bytes() == FAKE_BINARY
    assert found.stat().st_mode & 0o111
    assert seen == [f"/{ASSET}", "/release.json"]
    assert any("verified (SHA-256)" in line for line in said)
    # Cached: a second call with the server gone does not download again.
    assert (
        find_cloudflared(_env(tmp_path, "http://127.0.0.1:9"), tmp_path / "cache", said.append)
        == found
    )


@posix
@pytest.mark.parametrize(
    ("release", "message"),
    [
        (_release("ab" * 32), "does not match the SHA-256 of its release notes"),
        (_release(None, digest="cd" * 32), "does not match the SHA-256 its release publishes"),
        (_release(None), "publishes no SHA-256"),
    ],
)
def test_wrong_or_missing_checksum_is_refused(tmp_path: Path, release: dict, message: str) -> None:
    files = {f"/{ASSET}": FAKE_BINARY, "/release.json": json.dumps(release).encode()}
    with _serving(files) as (base, _), pytest.raises(LaunchError, match=message):
        find_cloudflared(_env(tmp_path, base), tmp_path / "cache", lambda _line: None)
    cache = tmp_path / "cache"
    assert not cache.exists() or not [p for p in cache.iterdir() if not p.name.startswith(".")]


@posix
def test_pinned_checksum_needs_no_release_data(tmp_path: Path) -> None:
    with _serving({f"/{ASSET}": FAKE_BINARY}) as (base, seen):
        env = _env(tmp_path, base, BRIDGE_CLOUDFLARED_SHA256=_sha(FAKE_BINARY).upper())
        found = find_cloudflared(env, tmp_path / "cache", lambda _line: None)
    assert found.read_bytes() == FAKE_BINARY
    assert seen == [f"/{ASSET}"]
    with _serving({f"/{ASSET}": FAKE_BINARY}) as (base, _), pytest.raises(LaunchError):
        env = _env(tmp_path, base, BRIDGE_CLOUDFLARED_SHA256="0" * 64,
                   BRIDGE_CLOUDFLARED_VERSION="2099.2.0")  # fmt: skip
        find_cloudflared(env, tmp_path / "cache", lambda _line: None)


def test_offline_says_how_to_supply_one(tmp_path: Path) -> None:
    with pytest.raises(LaunchError) as caught:
        find_cloudflared(_env(tmp_path, "http://127.0.0.1:9"), tmp_path / "cache", print)
    assert "cannot download cloudflared" in caught.value.message
    assert "no network?" in caught.value.message
    assert "BRIDGE_CLOUDFLARED=" in caught.value.message


@posix
def test_path_and_override_come_first(tmp_path: Path) -> None:
    on_path = install_fake_cloudflared(tmp_path / "bin")
    env = {"PATH": str(on_path.parent)}
    assert find_cloudflared(env, tmp_path / "cache", print) == on_path
    assert find_cloudflared({**env, "BRIDGE_CLOUDFLARED": str(on_path)}, tmp_path, print) == on_path
    with pytest.raises(LaunchError, match="is not an executable"):
        find_cloudflared({"BRIDGE_CLOUDFLARED": str(tmp_path / "nope")}, tmp_path, print)


def _tgz(binary: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cloudflared")
        info.size = len(binary)
        tar.addfile(info, io.BytesIO(binary))
    return buf.getvalue()


def test_macos_archive_is_checked_by_the_binary_inside() -> None:
    # cloudflared's release notes list, for a .tgz, the SHA-256 of the binary inside it.
    asset = "cloudflared-darwin-arm64.tgz"
    archive = _tgz(FAKE_BINARY)
    expected = published(_release(_sha(FAKE_BINARY), digest=_sha(archive), asset=asset), asset)
    assert expected == Published("unused", _sha(archive), _sha(FAKE_BINARY))
    assert verify(asset, archive, expected, None) == FAKE_BINARY
    with pytest.raises(LaunchError, match="release notes"):
        verify(asset, _tgz(b"other"), Published(None, None, _sha(FAKE_BINARY)), None)
    with pytest.raises(LaunchError, match="no cloudflared binary"):
        verify(asset, _empty_tgz(), Published(None, None, _sha(FAKE_BINARY)), None)


def _empty_tgz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz"):
        pass
    return buf.getvalue()


@pytest.mark.parametrize(
    ("system", "machine", "asset"),
    [
        ("Linux", "x86_64", "cloudflared-linux-amd64"),
        ("Linux", "aarch64", "cloudflared-linux-arm64"),
        ("Linux", "armv7l", "cloudflared-linux-arm"),
        ("Darwin", "arm64", "cloudflared-darwin-arm64.tgz"),
        ("Windows", "AMD64", "cloudflared-windows-amd64.exe"),
    ],
)
def test_release_asset_names(system: str, machine: str, asset: str) -> None:
    assert release_asset(system, machine) == asset


def test_no_asset_for_an_unknown_machine() -> None:
    with pytest.raises(LaunchError, match="install it"):
        release_asset("Plan9", "mips")
