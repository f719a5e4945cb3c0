"""scripts/startup.sh: argument handling, failure messages, venv stamp, tunnel and shutdown.

Everything runs on 127.0.0.1 without the internet: cloudflared is tests/ops/fake_bin/cloudflared,
Docker is a stand-in (or absent), and downloads point at a closed local port.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.servers import free_port

from .helpers import (
    FAKE_BIN,
    MARKER_VAR,
    REPO,
    SCRIPT,
    Running,
    make_fake_venv,
    marked_processes,
    process_group,
    run_script,
    script_env,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash"),
    # Leftover processes are found through /proc (Linux).
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc"),
]

BASE_URL_RE = re.compile(r"BaseUrl\s*:\s*(https://[a-z0-9-]+\.trycloudflare\.com/v1)\s*$", re.M)


def _path_with(*dirs: Path | str) -> str:
    return os.pathsep.join([*map(str, dirs), os.environ["PATH"]])


def _system_path_without(*commands: str) -> str:
    """A PATH with the basic tools bash needs but none of `commands` (else the test is moot)."""
    path = "/usr/bin:/bin"
    for command in commands:
        if shutil.which(command, path=path):
            pytest.skip(f"{command} is installed in {path}; cannot hide it")
    return path


def _repo_venv_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The repo's own venv, pre-installed: everything after the venv step is `dify-bridge
    start`, and a test must never run pip."""
    return script_env(tmp_path, BRIDGE_VENV=str(REPO / ".venv"), BRIDGE_SKIP_INSTALL="1", **extra)


def _assert_no_leftovers(env: dict[str, str], timeout: float = 10) -> None:
    """Every process startup.sh started inherited the marker variable, re-parented or not;
    none may be alive (zombies excluded) once the script has exited."""
    deadline = time.monotonic() + timeout
    while True:
        left = marked_processes(env[MARKER_VAR])
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes left behind by startup.sh: {sorted(left)}")
        time.sleep(0.2)


def test_script_is_executable_and_has_help(tmp_path: Path) -> None:
    assert os.access(SCRIPT, os.X_OK)
    env = _repo_venv_env(tmp_path)
    result = run_script(["--help"], env, cwd=tmp_path)
    assert result.returncode == 0
    for option in ("--tunnel", "--with-dify", "--host", "--port", "BRIDGE_VENV"):
        assert option in result.stdout
    # Issue 17: the download override was used but documented nowhere.
    assert "BRIDGE_CLOUDFLARED_URL" in result.stdout
    assert "BRIDGE_CLOUDFLARED_SHA256" in result.stdout  # from `dify-bridge start --help`


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unknown option: --bogus"),
        (["--port", "abc"], "--port must be a number"),
        (["--port", "70000"], "--port must be 1-65535"),
        (["--port"], "--port needs a value"),
        (["stray"], "unexpected argument 'stray'"),
        (["--model", "m"], "--model m needs a --dsl FILE before it"),
        (["--dsl", "a.yml", "--dsl", "b.yml", "--model", "m"], "--model m: give each --dsl its"),
    ],
)
def test_bad_arguments_fail_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    # The options are checked by `dify-bridge start`, after the venv step: use the repo's
    # installed venv and never pip.
    env = _repo_venv_env(tmp_path)
    result = run_script(args, env, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr


def test_with_dify_without_docker_engine(tmp_path: Path) -> None:
    # A docker client whose engine does not answer, exactly like this machine (and a laptop
    # with Docker Desktop stopped). A stand-in so the test never starts a real Dify.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.'
        ' Is the docker daemon running?" >&2\n'
        "exit 1\n"
    )
    docker.chmod(0o755)
    env = _repo_venv_env(tmp_path, PATH=_path_with(bin_dir))
    result = run_script(["--with-dify"], env, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--with-dify needs a running Docker engine" in lines[0]
    assert "DIFY_API_URL" in lines[0]  # says what to do instead


def test_with_dify_without_docker_installed(tmp_path: Path) -> None:
    env = _repo_venv_env(tmp_path, PATH=_system_path_without("docker"))
    result = run_script(["--with-dify"], env, cwd=tmp_path)
    assert result.returncode != 0
    assert "'docker' is not installed" in result.stderr


def test_tunnel_without_cloudflared_and_no_network(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there: the download fails like an offline machine
    env = script_env(
        tmp_path,
        PATH=_system_path_without("cloudflared"),
        BRIDGE_VENV=str(REPO / ".venv"),
        BRIDGE_SKIP_INSTALL="1",
        BRIDGE_CLOUDFLARED_URL=f"http://127.0.0.1:{closed}/cloudflared-linux-amd64",
        # Where the published SHA-256 would be read: closed too, never api.github.com.
        BRIDGE_CLOUDFLARED_RELEASE_URL=f"http://127.0.0.1:{closed}/release.json",
    )
    result = run_script(["--tunnel", "--port", str(free_port())], env, cwd=tmp_path)
    assert result.returncode != 0
    assert "cannot download cloudflared" in result.stderr
    assert "no network?" in result.stderr
    assert "BRIDGE_CLOUDFLARED" in result.stderr  # tells how to supply one by hand
    assert not marked_processes(env[MARKER_VAR])


def test_install_runs_only_when_pyproject_changes(tmp_path: Path) -> None:
    # A venv whose python only logs how it was called: the script must pip-install on the
    # first run, skip on the second (stamp matches), and reinstall once the stamp is stale.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "python-calls.log"
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    python.chmod(0o755)
    env = script_env(tmp_path, BRIDGE_VENV=str(venv))

    def pip_installs() -> int:
        calls = log.read_text().splitlines() if log.exists() else []
        return sum("-m pip install" in call and str(REPO) in call for call in calls)

    first = run_script(["--install-only"], env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert pip_installs() == 1
    stamp = venv / ".dify-bridge-install.sha256"
    assert stamp.exists()

    (venv / "bin" / "dify-bridge").write_text("#!/bin/sh\n")  # what the install would create
    (venv / "bin" / "dify-bridge").chmod(0o755)
    second = run_script(["--install-only"], env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert pip_installs() == 1

    stamp.write_text("stale\n")
    third = run_script(["--install-only"], env, cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert pip_installs() == 2


def test_bridge_that_fails_to_start(tmp_path: Path) -> None:
    venv = make_fake_venv(tmp_path / "venv", bridge_mode="exit3")
    env = script_env(tmp_path, BRIDGE_VENV=str(venv), BRIDGE_SKIP_INSTALL="1")
    result = run_script(["--port", str(free_port())], env, cwd=tmp_path)
    assert result.returncode != 0
    assert "the bridge exited during start-up (exit code 3)" in result.stderr


def test_port_already_in_use(tmp_path: Path) -> None:
    venv = make_fake_venv(tmp_path / "venv")
    env = script_env(tmp_path, BRIDGE_VENV=str(venv), BRIDGE_SKIP_INSTALL="1")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_script(["--port", str(port)], env, cwd=tmp_path)
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert not marked_processes(env[MARKER_VAR])


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("silent", "no trycloudflare.com URL from cloudflared within 2s"),
        ("exit", "cloudflared exited before printing a trycloudflare.com URL"),
    ],
)
def test_tunnel_failure_stops_everything(tmp_path: Path, mode: str, message: str) -> None:
    venv = make_fake_venv(tmp_path / "venv")
    env = script_env(
        tmp_path,
        PATH=_path_with(FAKE_BIN),
        BRIDGE_VENV=str(venv),
        BRIDGE_SKIP_INSTALL="1",
        BRIDGE_TUNNEL_TIMEOUT="2",
        FAKE_CLOUDFLARED_MODE=mode,
    )
    running = Running(["--tunnel", "--port", str(free_port())], env, cwd=tmp_path)
    try:
        rc = running.wait(timeout=60)
        assert rc != 0
        assert message in running.output
        _assert_no_leftovers(env)
    finally:
        running.kill_everything()


def _bridge_ready() -> str | None:
    bridge_bin = REPO / ".venv" / "bin" / "dify-bridge"
    if not bridge_bin.exists():
        return "the bridge is not installed in .venv (no .venv/bin/dify-bridge)"
    for module in ("bridge.cli", "bridge.emulator"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            return f"the bridge core is not importable yet (no {module})"
    return None


@pytest.mark.slow
def test_tunnel_end_to_end_and_clean_shutdown(tmp_path: Path) -> None:
    reason = _bridge_ready()
    if reason:
        pytest.skip(reason)
    port = free_port()
    record = tmp_path / "cloudflared-calls.txt"
    env = script_env(
        tmp_path,
        PATH=_path_with(FAKE_BIN),
        # The repo's own venv, pre-installed: the test must not run pip.
        BRIDGE_VENV=str(REPO / ".venv"),
        BRIDGE_SKIP_INSTALL="1",
        FAKE_CLOUDFLARED_RECORD=str(record),
    )
    running = Running(["--tunnel", "--port", str(port)], env, cwd=tmp_path)
    try:
        running.wait_for("Press Ctrl-C to stop.", timeout=90)
        out = running.output
        # A first run (no ./data yet) says it made a key, and nothing else about the file
        # (issue 17: "line 454: …/data/tunnel-api-key: No such file or directory").
        assert "generated an API key for the public tunnel" in out
        assert "No such file or directory" not in out

        # What to paste into FastGPT.
        match = BASE_URL_RE.search(out)
        assert match, out
        assert match.group(1) == "https://some-words-here.trycloudflare.com/v1"
        # Even the demo is not open on a public URL: a generated key, labelled as demo mode.
        key_line = re.search(r"Key\s*:\s*(sk-[A-Za-z0-9_-]{40,})\s+<-\s*demo mode.*required", out)
        assert key_line, out
        key = key_line.group(1)
        assert re.search(r"Model\s*:\s*o1\b", out), out
        assert "curl -sS https://some-words-here.trycloudflare.com/v1/chat/completions" in out

        # cloudflared was pointed at the bridge, in a process group of its own.
        pid, pgid, *args = record.read_text().split()
        assert args == ["tunnel", "--no-autoupdate", "--url", f"http://127.0.0.1:{port}"]
        assert pid == pgid

        # The bridge it started really answers on its local port.
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=json.dumps(
                {"model": "o1", "messages": [{"role": "user", "content": "hello"}]}
            ).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert body["choices"][0]["message"]["content"] == "喵"
        assert _status_with_key(port, "any-text") == 401

        started = marked_processes(env[MARKER_VAR])
        script_pid = running.proc.pid
        children = started - {script_pid}
        assert int(pid) in children
        assert len({process_group(p) for p in children if Path(f"/proc/{p}").exists()}) >= 2

        running.proc.send_signal(signal.SIGTERM)
        rc = running.wait(timeout=30)
        assert rc == 143, running.output
        assert "TERM received, stopping" in running.output
        # The script waits for what it stopped, so nothing may be left once it has exited.
        _assert_no_leftovers(env, timeout=1)
    finally:
        running.kill_everything()


def _status_with_key(port: int, key: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=json.dumps({"model": "o1", "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
        assert set(body["error"]) == {"message", "type", "param", "code"}
        return exc.code


@pytest.mark.slow
def test_tunnel_with_a_server_side_dify_key_generates_and_requires_a_bridge_key(
    tmp_path: Path,
) -> None:
    """--tunnel with DIFY_API_KEY and no BRIDGE_API_KEYS must not publish the app openly: a
    strong key is generated, kept 0600 across restarts, required, and printed for FastGPT."""
    reason = _bridge_ready()
    if reason:
        pytest.skip(reason)
    from bridge.emulator import EmulatorConfig, create_emulator_app
    from tests.support.recordings import DSL_DIR
    from tests.support.servers import serve_in_thread

    with serve_in_thread(create_emulator_app(EmulatorConfig(dsl_dir=DSL_DIR))) as dify:
        env = script_env(
            tmp_path,
            PATH=_path_with(FAKE_BIN),
            BRIDGE_VENV=str(REPO / ".venv"),
            BRIDGE_SKIP_INSTALL="1",
            DIFY_API_URL=f"{dify}/v1",
            DIFY_API_KEY="app-cat-llm",
        )
        keys = []
        for _ in range(2):  # the second start must reuse the first one's key
            port = free_port()
            running = Running(["--tunnel", "--port", str(port)], env, cwd=tmp_path)
            try:
                running.wait_for("Press Ctrl-C to stop.", timeout=90)
                out = running.output
                assert "any text works" not in out
                match = re.search(r"Key\s*:\s*(sk-[A-Za-z0-9_-]{40,})\s+<-\s*required", out)
                assert match, out
                keys.append(match.group(1))
                assert f"Authorization: Bearer {keys[-1]}" in out  # the curl line uses it
                for wrong in (None, "any-text", "app-cat-llm"):
                    assert _status_with_key(port, wrong) == 401
                assert _status_with_key(port, keys[-1]) == 200
                running.proc.send_signal(signal.SIGTERM)
                assert running.wait(timeout=30) == 143, running.output
            finally:
                running.kill_everything()
    assert keys[0] == keys[1]
    key_file = tmp_path / "data" / "tunnel-api-key"
    assert key_file.read_text().strip() == keys[0]
    assert key_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_whole_process_groups(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    # Stand-ins that each leave a child `sleep` behind unless their whole group is killed.
    venv = make_fake_venv(tmp_path / "venv")
    env = script_env(
        tmp_path, PATH=_path_with(FAKE_BIN), BRIDGE_VENV=str(venv), BRIDGE_SKIP_INSTALL="1"
    )
    running = Running(["--tunnel", "--port", str(free_port())], env, cwd=tmp_path)
    try:
        running.wait_for("Press Ctrl-C to stop.", timeout=60)
        assert BASE_URL_RE.search(running.output)
        started = marked_processes(env[MARKER_VAR])
        assert len(started) >= 5  # script, bridge + its sleep, cloudflared + its sleep
        running.proc.send_signal(sig)
        assert running.wait(timeout=30) == code, running.output
        _assert_no_leftovers(env, timeout=1)
    finally:
        running.kill_everything()


def test_with_dify_flow_against_stand_ins(tmp_path: Path) -> None:
    """--with-dify where an engine answers: uses the cached Dify docker/ folder, runs
    `docker compose up -d`, waits for Dify's API, points the bridge at it, and stops the stack
    on exit. Docker and Dify are stand-ins; nothing leaves 127.0.0.1."""
    calls = tmp_path / "docker-calls.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(
        f'#!/bin/sh\necho "$PWD $*" >> {calls}\n'
        # `compose ps` prints nothing: the stack is not running yet.
        "exit 0\n"
    )
    docker.chmod(0o755)
    dify_dir = tmp_path / "cache" / "dify-bridge" / "dify-1.13.2" / "docker"
    dify_dir.mkdir(parents=True)
    (dify_dir / "docker-compose.yaml").write_text("services: {}\n")
    (dify_dir / ".env.example").write_text("EXPOSE_NGINX_PORT=80\n")

    class Dify(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # like Dify's API without a key: 401
            self.send_response(401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    dify = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dify)
    threading.Thread(target=dify.serve_forever, daemon=True).start()
    dify_port = dify.server_address[1]

    record = tmp_path / "bridge.json"
    venv = make_fake_venv(tmp_path / "venv")
    env = script_env(
        tmp_path,
        PATH=_path_with(bin_dir),
        BRIDGE_VENV=str(venv),
        BRIDGE_SKIP_INSTALL="1",
        BRIDGE_DIFY_PORT=str(dify_port),
        FAKE_BRIDGE_RECORD=str(record),
    )
    running = Running(["--with-dify", "--port", str(free_port())], env, cwd=tmp_path)
    try:
        running.wait_for("Press Ctrl-C to stop.", timeout=60)
        assert (dify_dir / ".env").exists()  # copied from .env.example on first use
        assert json.loads(record.read_text())["DIFY_API_URL"] == f"http://127.0.0.1:{dify_port}/v1"
        assert "passthrough mode" in running.output  # a Dify app key is what clients send
        running.proc.send_signal(signal.SIGTERM)
        assert running.wait(timeout=30) == 143, running.output
        _assert_no_leftovers(env, timeout=1)
    finally:
        running.kill_everything()
        dify.shutdown()
        dify.server_close()
    docker_calls = [line.split(" ", 1) for line in calls.read_text().splitlines()]
    assert [args for _, args in docker_calls] == [
        "info",
        "compose version",
        "compose ps -q --status running",
        "compose up -d",
        "compose stop",
    ]
    assert {cwd for cwd, _ in docker_calls[2:]} == {str(dify_dir)}
