"""`dify-bridge start`: the bridge, and optionally the Dify compose stack and a cloudflared
quick tunnel, started in order, watched, and all stopped again on Ctrl-C / SIGTERM or when
one of them dies.

The bridge runs as a child `dify-bridge serve` process rather than in this process: its JSON
log and this launcher's messages and banner stay separate streams, a crash of either cannot
take the other's clean-up with it, and `serve` is exactly what users and the image run.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bridge.launch import banner
from bridge.launch.children import Child, spawn, stop_all
from bridge.launch.cloudflared import find_cloudflared
from bridge.launch.demo import REPO_DSL_DIR
from bridge.launch.dify_stack import DEFAULT_VERSION, DifyStack, check_docker, compose_dir
from bridge.launch.errors import LaunchError
from bridge.launch.interrupts import Interrupted, Interrupts
from bridge.launch.keys import ClientKey, client_key, masked, needs_tunnel_key, tunnel_key
from bridge.launch.net import listening, loopback_for
from bridge.launch.tunnel import start_tunnel, wait_for_url
from bridge.settings import ConfigError, Settings, load_settings


@dataclass
class StartOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    config: str | None = None
    dsl: list[Path] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    tunnel: bool = False
    with_dify: bool = False
    keep_dify: bool = False
    serve_args: list[str] = field(default_factory=list)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise LaunchError(f"{name} must be a number of seconds, got {raw!r}") from None
    return max(value, 0.0)


def bridge_command() -> list[str]:
    """`dify-bridge` of this very install (the entry point beside the interpreter: what `ps`
    shows users), else the same CLI as a module."""
    name = "dify-bridge.exe" if os.name == "nt" else "dify-bridge"
    entry = Path(sys.executable).parent / name
    if entry.is_file():
        return [str(entry)]
    return [sys.executable, "-m", "bridge.cli"]


def say(line: str) -> None:
    for part in line.splitlines() or [""]:
        print(f"[start] {part}", file=sys.stderr, flush=True)


class Launch:
    def __init__(
        self,
        options: StartOptions,
        env: Mapping[str, str] | None = None,
        *,
        command: list[str] | None = None,
        log: Callable[[str], None] = say,
    ) -> None:
        self.options = options
        self.env = dict(os.environ if env is None else env)  # what the children get
        self.command = command or bridge_command()
        self.say = log
        self.children: list[Child] = []
        self.stack: DifyStack | None = None
        self.interrupts = Interrupts()
        home = Path(self.env.get("HOME") or Path.home())
        self.cache_dir = Path(self.env.get("XDG_CACHE_HOME") or home / ".cache") / "dify-bridge"
        self.local_url = f"http://{loopback_for(options.host)}:{options.port}"
        try:
            self.stop_grace = _seconds(self.env, "BRIDGE_STOP_GRACE", 10)
        except LaunchError:
            self.stop_grace = 10.0  # reported nowhere else: the stop must still work

    # ---------------------------------------------------------------- the whole run
    def run(self) -> int:
        """Start everything, wait until something ends; the exit code (130/143 on a signal)."""
        self.interrupts.install()
        try:
            return self._run_then_stop()
        except Interrupted as stop:  # a signal while an error was being reported
            return stop.exit_code
        finally:
            self.interrupts.restore()

    def _run_then_stop(self) -> int:
        run_dir = Path(tempfile.mkdtemp(prefix="dify-bridge."))
        try:
            self._start(run_dir)
            self._watch()
            return 0  # not reached: _watch ends only by raising
        except Interrupted as stop:
            self.say(f"{stop.name} received, stopping")
            return stop.exit_code
        except LaunchError as exc:
            self.interrupts.stopping = True
            self.say(f"error: {exc.message}")
            return 1
        finally:
            self.interrupts.stopping = True  # from here a signal only hurries the stop
            stop_all(self.children, self.stop_grace, hurry=lambda: self.interrupts.hurry,
                     say=self.say)  # fmt: skip
            if self.stack is not None and not self.options.keep_dify:
                self.stack.stop(self.env, self.say)
            shutil.rmtree(run_dir, ignore_errors=True)

    def _start(self, run_dir: Path) -> None:
        options = self.options
        self._check_dsl()
        if options.with_dify:
            check_docker(self.env)
        cloudflared = None
        if options.tunnel:
            cloudflared = find_cloudflared(self.env, self.cache_dir, self.say)
        if options.with_dify:
            self._dify_up()
        host = loopback_for(options.host)
        if listening(host, options.port):
            raise LaunchError(
                f"port {options.port} on {host} is already in use; pick another with --port"
            )
        if self.stack is not None:
            self.stack.wait_ready(_seconds(self.env, "BRIDGE_DIFY_TIMEOUT", 300), self.say)
        provisioned = bool(options.dsl) and self._provision()
        settings = self._settings()
        client = client_key(settings)
        if options.tunnel and needs_tunnel_key(settings):
            client = self._tunnel_key(client)
        elif provisioned:
            client = ClientKey(
                masked(client.key),
                client.model,
                f"{client.note}; the full key is under api_keys in {options.config}",
            )
        bridge = self._start_bridge()
        tunnel_url = None
        if cloudflared is not None:
            tunnel_url = self._start_tunnel(cloudflared, run_dir)
        banner.write(
            banner.banner_lines(
                banner.BannerFacts(
                    local_url=self.local_url,
                    bound_host=options.host,
                    bridge_pid=bridge.pid,
                    dify_api_url=self.env.get("DIFY_API_URL") or None,
                    client=client,
                    tunnel_url=tunnel_url,
                )
            )
        )

    def _watch(self) -> None:
        """Until a signal (raised as Interrupted) or until a child ends (LaunchError)."""
        while True:
            for child in self.children:
                code = child.exited()
                if code is None:
                    continue
                if child.name == "cloudflared":
                    raise LaunchError(
                        f"cloudflared (pid {child.pid}) exited with code {code}; the tunnel is gone"
                    )
                raise LaunchError(f"the bridge (pid {child.pid}) exited with code {code}")
            time.sleep(0.5)

    # ---------------------------------------------------------------- steps
    def _check_dsl(self) -> None:
        options, env = self.options, self.env
        has_admin = bool(env.get("DIFY_ADMIN_EMAIL") and env.get("DIFY_ADMIN_PASSWORD"))
        if options.with_dify and not options.dsl and has_admin:
            # The acceptance path of issue 12: Cat_LLM as model o1 in a fresh Dify.
            options.dsl, options.models = [REPO_DSL_DIR / "Cat_LLM.yml"], ["o1"]
        if not options.dsl:
            return
        if not env.get("DIFY_API_URL") and not options.with_dify:
            raise LaunchError(
                "--dsl needs a Dify to provision into: set DIFY_API_URL "
                "(e.g. http://127.0.0.1/v1) or use --with-dify"
            )
        if not has_admin:
            raise LaunchError(
                "--dsl needs the Dify admin login: set DIFY_ADMIN_EMAIL and DIFY_ADMIN_PASSWORD"
            )
        for path in options.dsl:
            if not path.is_file():
                raise LaunchError(f"--dsl {path}: no such file")
        if not options.config:
            # The written config holds keys: keep it out of the working tree unless asked.
            home = Path(env.get("HOME") or Path.home())
            base = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
            options.config = str(base / "dify-bridge" / "bridge.yaml")

    def _dify_up(self) -> None:
        version = self.env.get("BRIDGE_DIFY_VERSION", "").strip() or DEFAULT_VERSION
        port = int(self.env.get("BRIDGE_DIFY_PORT", "").strip() or 80)
        folder = compose_dir(self.cache_dir, version, self.say)
        self.env["EXPOSE_NGINX_PORT"] = str(port)
        self.stack = DifyStack(folder, port)
        with self.interrupts.shielded():  # what compose starts must be stopped on exit
            self.stack.up(self.env, self.say)
        self.env["DIFY_API_URL"] = self.stack.api_url

    def _provision(self) -> bool:
        from bridge.provision.command import run_provision

        options = self.options
        dify_url = self.env["DIFY_API_URL"]
        self.say(f"provisioning into the Dify at {dify_url}; config: {options.config}")
        code = run_provision(
            tuple(str(p) for p in options.dsl),
            dify_url,
            tuple(options.models),
            options.config,
            self.env.get("DIFY_ADMIN_EMAIL"),
            self.env.get("DIFY_ADMIN_PASSWORD"),
            "admin",
            self.env.get("DIFY_INIT_PASSWORD") or None,
        )
        if code != 0:
            raise LaunchError("provisioning failed (see the message above); nothing was started")
        return True

    def _settings(self) -> Settings:
        try:
            return load_settings(
                self.options.config, env=self.env, host=self.options.host, port=self.options.port
            )
        except ConfigError as exc:
            raise LaunchError(str(exc)) from exc

    def _tunnel_key(self, client: ClientKey) -> ClientKey:
        data_dir = Path(self.env.get("BRIDGE_DATA_DIR") or Path.cwd() / "data")
        kept = tunnel_key(data_dir)
        if kept.created:
            self.say(f"generated an API key for the public tunnel: {kept.path}")
        self.env["BRIDGE_API_KEYS"] = kept.key
        note = (
            f"required: generated for the public tunnel, kept in {kept.path} "
            "(set BRIDGE_API_KEYS to choose your own)"
        )
        if not self.env.get("DIFY_API_URL"):
            note = f"demo mode (built-in emulator); {note}"
        return ClientKey(kept.key, client.model, note)

    def _start_bridge(self) -> Child:
        options = self.options
        argv = [*self.command, "serve", "--host", options.host, "--port", str(options.port)]
        if options.config:
            argv += ["--config", options.config]
        argv += options.serve_args
        self.say(f"starting: {' '.join(argv)}")
        with self.interrupts.shielded():
            bridge = spawn("the bridge", argv, env=self.env)
            self.children.append(bridge)
        timeout = _seconds(self.env, "BRIDGE_START_TIMEOUT", 60)
        deadline = time.monotonic() + timeout
        host = loopback_for(options.host)
        while not listening(host, options.port, timeout=0.5):
            code = bridge.exited()
            if code is not None:
                raise LaunchError(
                    f"the bridge exited during start-up (exit code {code}); see its output above"
                )
            if time.monotonic() >= deadline:
                raise LaunchError(
                    f"the bridge did not answer {self.local_url} within {timeout:g}s "
                    "(BRIDGE_START_TIMEOUT)"
                )
            time.sleep(0.1)
        return bridge

    def _start_tunnel(self, cloudflared: Path, run_dir: Path) -> str:
        log_path = run_dir / "cloudflared.log"
        self.say(f"starting cloudflared quick tunnel ({cloudflared}) -> {self.local_url}")
        with self.interrupts.shielded():
            child = start_tunnel(cloudflared, self.local_url, log_path, self.env)
            self.children.append(child)
        timeout = _seconds(self.env, "BRIDGE_TUNNEL_TIMEOUT", 60)
        url = wait_for_url(child, log_path, timeout, say=self.say)
        self.say(f"cloudflared log: {log_path}")
        return url
