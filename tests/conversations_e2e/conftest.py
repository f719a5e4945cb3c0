"""End-to-end conversation tests: the openai SDK → the bridge → the Dify emulator.

The emulator keeps real conversations and a journal of every request it received, so a test
can check what Dify saw (``query``, ``conversation_id``, ``auto_generate_name``) and, through
EchoChat's ``Previous query: [...]`` (a conversation variable), whether Dify's own memory was
used.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from bridge import create_app, load_settings
from bridge.emulator import EmulatorConfig, create_emulator_app
from tests.support.recordings import DSL_DIR
from tests.support.servers import free_port, serve_in_thread

BRIDGE_KEY = "sk-conversations-e2e"
ECHO_KEY = "app-echochat"
SYSTEM_PROMPT = "Answer like an echo."
CONVERSATION_HEADER = "X-Dify-Conversation-Id"
ECHO_INPUTS = {"system_prompt": SYSTEM_PROMPT}
MODELS: list[dict[str, Any]] = [
    {"id": "echo", "app_key": ECHO_KEY, "inputs": ECHO_INPUTS},
    {"id": "echo-flatten", "app_key": ECHO_KEY, "inputs": ECHO_INPUTS, "history": "flatten"},
    {"id": "echo-last", "app_key": ECHO_KEY, "inputs": ECHO_INPUTS, "history": "last"},
]
_END_MARK = "] End: "


def previous_query(answer: str) -> str:
    """What EchoChat remembered from the previous turn of its Dify conversation.

    EchoChat answers ``Part A: you said "<q>". Part B: <Q> (prompt=…, tone=none)`` and
    ``Previous query: [<previous>] End: <q>``; ``<q>`` may itself hold such text (carried
    history), so the split is the one whose ``<q>`` matches the start of the answer.
    """
    for match in re.finditer(re.escape(_END_MARK), answer):
        query = answer[match.end() :]
        prefix = (
            f'Part A: you said "{query}". Part B: {query.upper()} '
            f"(prompt={SYSTEM_PROMPT}, tone=none)\nPrevious query: ["
        )
        if answer.startswith(prefix) and match.start() >= len(prefix):
            return answer[len(prefix) : match.start()]
    raise AssertionError(f"not an EchoChat answer: {answer!r}")


# --- the emulator -----------------------------------------------------------------------------


@dataclass
class Emulator:
    """A Dify emulator served on 127.0.0.1, restartable on the same port."""

    port: int = field(default_factory=free_port)
    idle_timeout: float = 30.0
    _server: contextlib.ExitStack | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> None:
        config = EmulatorConfig(dsl_dir=DSL_DIR, ping_interval=2.0, idle_timeout=self.idle_timeout)
        stack = contextlib.ExitStack()
        stack.enter_context(serve_in_thread(create_emulator_app(config), port=self.port))
        self._server = stack

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def restart(self) -> None:
        """A fresh emulator on the same URL: every conversation is forgotten."""
        self.stop()
        self.start()

    def journal(self, user: str | None = None) -> list[dict[str, Any]]:
        """JSON bodies of the chat-messages calls received (optionally of one Dify user)."""
        entries = httpx.get(f"{self.url}/_emulator/journal", timeout=10).json()
        bodies = [
            entry["json"]
            for entry in entries
            if entry["path"].endswith("/chat-messages") and entry["method"] == "POST"
        ]
        return [body for body in bodies if user is None or body.get("user") == user]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator()
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


# --- bridges ----------------------------------------------------------------------------------


def bridge_app(api_url: str, **overrides: Any):
    env = {"DIFY_API_URL": api_url, "BRIDGE_STORE": "memory://", "LOG_FORMAT": "console"}
    settings: dict[str, Any] = {"api_keys": [BRIDGE_KEY], "models": MODELS}
    settings.update(overrides)
    return create_app(load_settings(env=env, **settings))


@contextlib.contextmanager
def bridge_in_thread(api_url: str, **overrides: Any) -> Iterator[str]:
    with serve_in_thread(bridge_app(api_url, **overrides)) as url:
        yield url


@pytest.fixture(scope="module")
def bridge_url(emulator: Emulator) -> Iterator[str]:
    with bridge_in_thread(emulator.api_url) as url:
        yield url


def client_for(url: str, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=BRIDGE_KEY, max_retries=0, **kwargs)


@pytest.fixture
def client(bridge_url: str) -> openai.OpenAI:
    return client_for(bridge_url, timeout=30)


@pytest.fixture
def user() -> str:
    """A Dify user of its own per test, so the journal can be read per test."""
    return f"e2e-{uuid.uuid4().hex[:12]}"


# --- a chat as a client holds it --------------------------------------------------------------


@dataclass
class Reply:
    answer: str
    conversation_id: str | None
    """The response header ``X-Dify-Conversation-Id``."""


@dataclass
class Chat:
    """An OpenAI client's view of one chat: it resends the whole history every turn."""

    client: openai.OpenAI
    user: str
    model: str = "echo"
    messages: list[dict[str, Any]] = field(default_factory=list)

    def say(self, text: str, *, stream: bool = False, **kwargs: Any) -> Reply:
        self.messages.append({"role": "user", "content": text})
        reply = send(
            self.client, self.messages, user=self.user, model=self.model, stream=stream, **kwargs
        )
        self.messages.append({"role": "assistant", "content": reply.answer})
        return reply


def send(
    client: openai.OpenAI,
    messages: list[dict[str, Any]],
    *,
    user: str,
    model: str = "echo",
    stream: bool = False,
    **kwargs: Any,
) -> Reply:
    """One chat completion; returns the answer and the conversation header."""
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=messages, user=user, stream=stream, **kwargs
    )
    header = raw.headers.get(CONVERSATION_HEADER)
    if stream:
        chunks = list(raw.parse())
        answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        answer = raw.parse().choices[0].message.content or ""
    return Reply(answer=answer, conversation_id=header)


# --- bridges as real processes ----------------------------------------------------------------


@dataclass
class BridgeProcess:
    """``python -m bridge.cli serve`` in a process of its own; its log goes to a file."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        env = {**os.environ, **self.env}
        command = [sys.executable, "-m", "bridge.cli", "serve", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bridge exited ({self.process.returncode}):\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"bridge did not become healthy:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def bridge_processes(tmp_path: Path, emulator: Emulator) -> Iterator[Any]:
    """A factory of bridge processes on the emulator; every one is stopped at the end."""
    started: list[BridgeProcess] = []
    config_path = tmp_path / "bridge.yml"
    config_path.write_text(yaml.safe_dump({"models": MODELS}))

    def start(store: str, name: str = "bridge", **extra_env: str) -> BridgeProcess:
        env = {
            "DIFY_API_URL": emulator.api_url,
            "BRIDGE_STORE": store,
            "BRIDGE_API_KEYS": BRIDGE_KEY,
            "BRIDGE_CONFIG": str(config_path),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
            **extra_env,
        }
        process = BridgeProcess(env=env, log_path=tmp_path / f"{name}-{len(started)}.log")
        started.append(process)
        process.start()
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()
