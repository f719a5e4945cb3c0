"""`--with-dify`: the official Dify docker compose stack, fetched once into the cache, started
(when it is not running already), waited for, and stopped again on exit unless `--keep-dify`
or it was running before."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bridge.launch.errors import LaunchError
from bridge.launch.net import download, http_status

DEFAULT_VERSION = "1.13.2"
SOURCE = "https://codeload.github.com/langgenius/dify/tar.gz/refs/tags/{version}"


def check_docker(env: Mapping[str, str]) -> None:
    """Fail fast, before anything starts, with what to do instead."""
    if shutil.which("docker", path=env.get("PATH")) is None:
        raise LaunchError(
            "--with-dify needs Docker, but 'docker' is not installed; point DIFY_API_URL at "
            "an existing Dify instead"
        )
    if _docker(["info"], env).returncode != 0:
        raise LaunchError(
            "--with-dify needs a running Docker engine, but 'docker info' got no answer from "
            "one; start Docker or set DIFY_API_URL to an existing Dify"
        )
    if _docker(["compose", "version"], env).returncode != 0:
        raise LaunchError("--with-dify needs the 'docker compose' plugin, which is not installed")


def _docker(
    args: list[str], env: Mapping[str, str], cwd: Path | None = None, quiet: bool = True
) -> subprocess.CompletedProcess[bytes]:
    child_env = dict(env)
    if cwd is not None:
        child_env["PWD"] = str(cwd)  # shells (and the test stand-ins) read it
    return subprocess.run(  # noqa: S603 - fixed docker sub-commands, no shell
        ["docker", *args],  # noqa: S607 - docker from PATH, like a user typing it
        env=child_env,
        cwd=cwd,
        capture_output=quiet,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def compose_dir(cache_dir: Path, version: str, say: Callable[[str], None]) -> Path:
    """Dify's docker/ folder for `version`, downloaded once; `.env` from `.env.example`."""
    folder = cache_dir / f"dify-{version}" / "docker"
    if not (folder / "docker-compose.yaml").is_file():
        url = SOURCE.format(version=version)
        say(f"fetching Dify {version}'s docker/ folder from {url}")
        archive = cache_dir / f"dify-{version}.tar.gz"
        try:
            download(url, archive)
        except OSError as exc:
            raise LaunchError(f"cannot download Dify {version} from {url} (no network?)") from exc
        try:
            _extract_docker_folder(archive, folder, f"dify-{version}/docker/")
        finally:
            archive.unlink(missing_ok=True)
    env_file = folder / ".env"
    if not env_file.exists():
        shutil.copyfile(folder / ".env.example", env_file)
    return folder


def _extract_docker_folder(archive: Path, folder: Path, prefix: str) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        if not members:
            raise LaunchError("the Dify archive has no docker/ folder")
        for member in members:
            member.name = member.name[len(prefix) :]
        folder.mkdir(parents=True, exist_ok=True)
        wanted = [m for m in members if m.name]
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
            # The "data" filter refuses absolute paths, links out of the folder, devices.
            tar.extractall(folder, members=wanted, filter="data")
            return
        if any(m.name.startswith("/") or ".." in Path(m.name).parts for m in wanted):
            raise LaunchError("the Dify archive has paths outside its docker/ folder")
        tar.extractall(folder, members=wanted)  # noqa: S202 - names checked above


@dataclass
class DifyStack:
    folder: Path
    port: int
    started_here: bool = False

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def up(self, env: Mapping[str, str], say: Callable[[str], None]) -> None:
        running = _docker(["compose", "ps", "-q", "--status", "running"], env, self.folder)
        if running.returncode == 0 and running.stdout.strip():
            say(f"Dify stack in {self.folder} is already running; leaving it running on exit")
            return
        say(f"starting Dify (docker compose up -d in {self.folder})")
        if _docker(["compose", "up", "-d"], env, self.folder, quiet=False).returncode != 0:
            raise LaunchError(f"docker compose up failed in {self.folder}")
        self.started_here = True

    def stop(self, env: Mapping[str, str], say: Callable[[str], None]) -> None:
        if self.started_here:
            say("stopping the Dify stack (use --keep-dify to leave it running)")
            _docker(["compose", "stop"], env, self.folder, quiet=False)
            self.started_here = False

    def wait_ready(self, timeout: float, say: Callable[[str], None]) -> None:
        """Dify's nginx answers 502 while the API boots; any answer below 500 means it is up."""
        say(f"waiting for Dify at {self.api_url} (up to {timeout:g}s)")
        deadline = time.monotonic() + timeout
        while True:
            status = http_status(f"{self.api_url}/parameters")
            if status is not None and status < 500:
                return
            if time.monotonic() >= deadline:
                raise LaunchError(
                    f"Dify did not answer at {self.api_url} in time "
                    f"(docker compose logs in {self.folder})"
                )
            time.sleep(1)
