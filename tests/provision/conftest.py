"""A Dify emulator served on 127.0.0.1 for the provisioning tests, and a way to run
`dify-bridge provision` the way a user does (click, real HTTP) while capturing everything it
prints and logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar import Litestar

from bridge.cli import main
from bridge.emulator import create_emulator_app
from bridge.emulator.console import console_of
from tests.support.servers import serve_in_thread

REPO = Path(__file__).resolve().parents[2]
CAT_DSL = REPO / "dify-dsl" / "Cat_LLM.yml"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Sup3r-Secret-Pa55"


@dataclass
class Dify:
    url: str
    app: Litestar

    @property
    def console(self):
        return console_of(self.app)

    def journal(self) -> list[dict]:
        return list(self.app.state.emulator.store.journal)

    def clear_journal(self) -> None:
        self.app.state.emulator.store.journal.clear()


def start_dify(init_password: str | None = None):
    app = create_emulator_app()
    console_of(app, init_password=init_password)
    return app


@pytest.fixture
def dify() -> Iterator[Dify]:
    """A fresh, not-yet-set-up Dify (emulator) with no apps."""
    app = start_dify()
    with serve_in_thread(app) as url:
        yield Dify(url, app)


@pytest.fixture(scope="module")
def set_up_dify() -> Iterator[Dify]:
    """One Dify for a module's failure cases, already set up with the admin."""
    app = start_dify()
    console_of(app).setup({"email": ADMIN_EMAIL, "name": "admin", "password": ADMIN_PASSWORD}, None)
    with serve_in_thread(app) as url:
        yield Dify(url, app)


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str
    logs: str

    @property
    def everything(self) -> str:
        return self.stdout + self.stderr + self.logs


@pytest.fixture
def provision(caplog: pytest.LogCaptureFixture, tmp_path: Path):
    """Run `dify-bridge provision ARGS` with the admin credentials in the environment."""

    def run(*args: str, password: str = ADMIN_PASSWORD, **env: str) -> Run:
        caplog.clear()
        environment = {
            "DIFY_ADMIN_EMAIL": ADMIN_EMAIL,
            "DIFY_ADMIN_PASSWORD": password,
            "DIFY_API_URL": None,
            "BRIDGE_CONFIG": None,
            "DIFY_INIT_PASSWORD": None,
            **env,
        }
        with caplog.at_level(logging.DEBUG):
            result = CliRunner().invoke(main, ["provision", *args], env=environment)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr, caplog.text)

    return run
