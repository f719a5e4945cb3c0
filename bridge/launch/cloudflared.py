"""Find cloudflared, or download the release binary for this machine and check it against the
SHA-256 the release publishes before it is ever run.

What a cloudflared GitHub release publishes (its github_message.py): the release notes end with
"### SHA256 Checksums:" and one `<asset name>: <sha256>` line per asset. For the macOS `.tgz`
assets that checksum is the one of the `cloudflared` binary inside the archive, not of the
archive. GitHub's release API also gives each asset a `digest` ("sha256:…") of the file itself.
Every published checksum that applies must match; a release that publishes none is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.launch.errors import LaunchError
from bridge.launch.net import download, fetch_bytes

INSTALL_DOCS = (
    "https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/"
)
RELEASES_API = "https://api.github.com/repos/cloudflare/cloudflared/releases"
RELEASE_ASSET = "https://github.com/cloudflare/cloudflared/releases/download/{tag}/{asset}"
LATEST_REUSE = 24 * 3600.0  # a downloaded "latest" is used for a day, then refreshed

_ARCH = {
    "x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
    "armv7l": "arm", "armv6l": "arm", "arm": "arm", "i386": "386", "i686": "386", "x86": "386",
}  # fmt: skip
_ASSETS = {
    ("linux", arch): f"cloudflared-linux-{arch}" for arch in ("amd64", "arm64", "arm", "386")
} | {
    ("darwin", "amd64"): "cloudflared-darwin-amd64.tgz",
    ("darwin", "arm64"): "cloudflared-darwin-arm64.tgz",
    ("windows", "amd64"): "cloudflared-windows-amd64.exe",
    ("windows", "386"): "cloudflared-windows-386.exe",
}


def release_asset(system: str | None = None, machine: str | None = None) -> str:
    """The release asset for this OS and CPU (`cloudflared-linux-amd64`, …)."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    asset = _ASSETS.get((system, _ARCH.get(machine, machine)))
    if asset is None:
        raise LaunchError(
            f"no cloudflared on PATH and no release binary for {system}/{machine}; "
            f"install it: {INSTALL_DOCS}"
        )
    return asset


@dataclass(frozen=True)
class Published:
    """What a release says about one asset."""

    url: str | None  # where the asset is downloaded from
    file_sha256: str | None  # GitHub's digest of the asset file
    binary_sha256: str | None  # the release notes' checksum (of the binary, even in a .tgz)


def published(release: Mapping[str, Any], asset: str) -> Published:
    url = file_sha = None
    for entry in release.get("assets") or []:
        if isinstance(entry, dict) and entry.get("name") == asset:
            url = entry.get("browser_download_url")
            digest = str(entry.get("digest") or "")
            if re.fullmatch(r"sha256:[0-9a-fA-F]{64}", digest):
                file_sha = digest.removeprefix("sha256:").lower()
    found = re.search(
        rf"^\s*{re.escape(asset)}:\s*([0-9a-fA-F]{{64}})\s*$", str(release.get("body") or ""), re.M
    )
    return Published(url, file_sha, found.group(1).lower() if found else None)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unpack(asset: str, data: bytes) -> bytes:
    """The cloudflared binary: the asset itself, or the `cloudflared` file of a .tgz."""
    if not asset.endswith(".tgz"):
        return data
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                if member.isfile() and Path(member.name).name == "cloudflared":
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
    except (tarfile.TarError, OSError) as exc:
        raise LaunchError(f"the downloaded {asset} is not a readable archive: {exc}") from exc
    raise LaunchError(f"the downloaded {asset} has no cloudflared binary in it")


def verify(asset: str, data: bytes, expected: Published, pinned: str | None) -> bytes:
    """The binary from `data` once every published checksum matches; LaunchError otherwise."""
    if expected.file_sha256 and sha256_of(data) != expected.file_sha256:
        raise LaunchError(
            f"the downloaded {asset} does not match the SHA-256 its release publishes "
            f"(expected {expected.file_sha256}, got {sha256_of(data)}); refusing to run it"
        )
    binary = unpack(asset, data)
    want = (pinned or expected.binary_sha256 or "").lower()
    if want and sha256_of(binary) != want:
        source = "BRIDGE_CLOUDFLARED_SHA256" if pinned else "its release notes"
        raise LaunchError(
            f"the downloaded cloudflared ({asset}) does not match the SHA-256 of {source} "
            f"(expected {want}, got {sha256_of(binary)}); refusing to run it"
        )
    if not want and not expected.file_sha256:
        raise LaunchError(
            f"the cloudflared release publishes no SHA-256 for {asset}; refusing to run an "
            f"unverified download (set BRIDGE_CLOUDFLARED_SHA256, or install cloudflared: "
            f"{INSTALL_DOCS})"
        )
    return binary


def find_cloudflared(env: Mapping[str, str], cache_dir: Path, say: Callable[[str], None]) -> Path:
    """BRIDGE_CLOUDFLARED, else cloudflared on PATH, else a verified download (cached)."""
    chosen = env.get("BRIDGE_CLOUDFLARED", "").strip()
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise LaunchError(f"BRIDGE_CLOUDFLARED={chosen} is not an executable")
        return Path(chosen)
    on_path = shutil.which("cloudflared", path=env.get("PATH"))
    if on_path:
        return Path(on_path)
    return _downloaded(env, cache_dir, say)


def _fetch_release(env: Mapping[str, str], version: str) -> tuple[str, dict[str, Any]]:
    url = env.get("BRIDGE_CLOUDFLARED_RELEASE_URL", "").strip() or (
        f"{RELEASES_API}/latest" if version == "latest" else f"{RELEASES_API}/tags/{version}"
    )
    try:
        release = json.loads(fetch_bytes(url))
    except OSError as exc:
        raise _OfflineError(url, exc) from exc
    except ValueError as exc:
        raise LaunchError(f"the cloudflared release data at {url} is not JSON") from exc
    if not isinstance(release, dict):
        raise LaunchError(f"the cloudflared release data at {url} is not a release")
    return url, release


class _OfflineError(Exception):
    def __init__(self, url: str, cause: OSError) -> None:
        super().__init__(url)
        self.url = url
        self.cause = cause


def _downloaded(env: Mapping[str, str], cache_dir: Path, say: Callable[[str], None]) -> Path:
    asset = release_asset()
    version = env.get("BRIDGE_CLOUDFLARED_VERSION", "").strip() or "latest"
    suffix = ".exe" if asset.endswith(".exe") else ""
    target = cache_dir / f"cloudflared-{version}-{asset.removeprefix('cloudflared-')}"
    target = target.with_name(target.name.removesuffix(".tgz").removesuffix(".exe") + suffix)
    if target.exists() and (
        version != "latest" or time.time() - target.stat().st_mtime < LATEST_REUSE
    ):
        return target
    pinned = env.get("BRIDGE_CLOUDFLARED_SHA256", "").strip() or None
    url = env.get("BRIDGE_CLOUDFLARED_URL", "").strip()
    release: dict[str, Any] | None = None
    try:
        if not url:
            if version == "latest":
                _, release = _fetch_release(env, version)
                version_tag = str(release.get("tag_name") or "latest")
                url = published(release, asset).url or RELEASE_ASSET.format(
                    tag=version_tag, asset=asset
                )
            else:
                url = RELEASE_ASSET.format(tag=version, asset=asset)
        say(f"cloudflared not on PATH; downloading {url}")
        part = cache_dir / f".{asset}.download"
        try:
            download(url, part)
        except OSError as exc:
            raise _OfflineError(url, exc) from exc
        data = part.read_bytes()
        part.unlink()
        if release is None and pinned is None:
            _, release = _fetch_release(env, version)
    except _OfflineError as exc:
        if target.exists():
            say(f"download failed; using the cached {target}")
            return target
        raise LaunchError(
            f"cannot download cloudflared from {exc.url} (no network?). Install cloudflared and "
            f"put it on PATH ({INSTALL_DOCS}), or set BRIDGE_CLOUDFLARED=/path/to/cloudflared, "
            "then retry"
        ) from exc
    expected = published(release or {}, asset)
    binary = verify(asset, data, expected, pinned)
    _install(binary, target)
    try:
        subprocess.run(  # noqa: S603 - the binary just verified, no shell
            [str(target), "--version"], capture_output=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as exc:
        with contextlib.suppress(OSError):
            target.unlink()
        raise LaunchError(f"the downloaded {target} does not run on this machine") from exc
    say(f"cloudflared {asset} verified (SHA-256) and kept in {target}")
    return target


def _install(binary: bytes, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(binary)
    tmp.chmod(0o755)
    os.replace(tmp, target)
