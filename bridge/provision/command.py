"""`dify-bridge provision`: the command's body, kept out of bridge/cli.py."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .plan import EXIT_USAGE, Credentials, ProvisionError, provision
from .report import render


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
