"""`dify-bridge provision`: the command's body, kept out of bridge/cli.py."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from .plan import EXIT_USAGE, Credentials, ProvisionError, provision
from .report import render

F = TypeVar("F", bound=Callable[..., object])

# The Dify admin login, each option with its environment variable; they reach run_provision as
# keyword arguments of the same names (admin_email, admin_password, admin_name, init_password).
_ADMIN_OPTIONS = (
    click.option("--admin-email", envvar="DIFY_ADMIN_EMAIL", help="Default: DIFY_ADMIN_EMAIL."),
    click.option(
        "--admin-password", envvar="DIFY_ADMIN_PASSWORD", help="Default: DIFY_ADMIN_PASSWORD."
    ),
    click.option("--admin-name", default="admin", show_default=True, help="For a fresh Dify."),
    click.option("--init-password", envvar="DIFY_INIT_PASSWORD", help="Dify's INIT_PASSWORD."),
)


def admin_options(command: F) -> F:
    """Decorator: the admin-credential options of `dify-bridge provision`, in help order."""
    for option in reversed(_ADMIN_OPTIONS):
        command = option(command)
    return command


def run_provision(
    dsl_files: tuple[str, ...],
    dify_url: str | None,
    models: tuple[str, ...],
    write_config: str | None,
    admin_email: str | None,
    admin_password: str | None,
    admin_name: str,
    init_password: str | None,
) -> int:
    """Provision, print the table; the exit code (0 on success)."""
    problems = []
    if not dify_url:
        problems.append("--dify-url (or DIFY_API_URL) is required")
    if not admin_email:
        problems.append("the admin email is required: set DIFY_ADMIN_EMAIL (or --admin-email)")
    if not admin_password:
        problems.append(
            "the admin password is required: set DIFY_ADMIN_PASSWORD (or --admin-password)"
        )
    config_path = write_config or os.environ.get("BRIDGE_CONFIG")
    if not config_path:
        problems.append("where to write the config: --write-config PATH (or BRIDGE_CONFIG)")
    if problems:
        for problem in problems:
            click.echo(f"dify-bridge provision: {problem}", err=True)
        return EXIT_USAGE
    credentials = Credentials(
        email=str(admin_email),
        password=str(admin_password),
        name=admin_name,
        init_password=init_password,
    )
    try:
        outcome = provision(
            [Path(p) for p in dsl_files],
            list(models),
            str(dify_url),
            Path(config_path),
            credentials,
            progress=lambda line: click.echo(line, err=True),
        )
    except ProvisionError as exc:
        click.echo(f"dify-bridge provision: {exc.message}", err=True)
        return exc.exit_code
    for line in render(outcome):
        click.echo(line)
    return 0
