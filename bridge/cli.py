"""`dify-bridge serve | start | check | emulator | models` — a small click CLI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from bridge.launch.command import start
from bridge.provision.command import admin_options, run_provision
from bridge.settings import ConfigError, load_settings


def _load(config: str | None, **overrides: object):
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        click.echo(f"dify-bridge: {exc}", err=True)
        sys.exit(2)


@click.group()
@click.version_option(package_name="dify-openai-bridge")
def main() -> None:
    """Serve Dify apps as OpenAI chat models."""


main.add_command(start)  # bridge/launch/command.py: the bridge, tunnel and Dify, supervised


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8000).")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    envvar="BRIDGE_CONFIG",
    help="YAML configuration file.",
)
@click.option("--workers", type=int, default=1, show_default=True)
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
def serve(
    host: str | None, port: int | None, config: str | None, workers: int, reload: bool
) -> None:
    """Run the bridge."""
    from bridge.http.edge_limits import raise_fd_limit
    from bridge.http.server import run, server_config

    raise_fd_limit()  # before the limits are derived from it
    settings = _load(config, host=host, port=port)
    _check_upstream_groups(settings)
    if config:
        # Workers and reload import the app factory afresh; they read the file from the env.
        import os

        os.environ["BRIDGE_CONFIG"] = str(Path(config).resolve())
    if host:
        import os

        os.environ["BRIDGE_HOST"] = host
    # bridge.http.server: uvicorn with request deadlines, a head size bound and a connection cap.
    run(
        server_config(
            "bridge.cli:app_factory",
            settings,
            factory=True,
            workers=workers if not reload else None,
            reload=reload,
        )
    )


def _check_upstream_groups(settings) -> None:  # type: ignore[no-untyped-def]
    """All upstreams of a model serve the same kind of app, or start-up stops (one line)."""
    import asyncio

    from bridge.upstreams.checks import check_groups

    try:
        asyncio.run(check_groups(settings))
    except ConfigError as exc:
        click.echo(f"dify-bridge: {exc}", err=True)
        sys.exit(2)


def app_factory():
    from bridge.launch.app import create_app

    return create_app(_load(None))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=5001, show_default=True)
@click.option(
    "--dsl-dir",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Folder of Dify DSL files (default: the repository's dify-dsl/).",
)
@click.option(
    "--dify-version",
    default="1.13.2",
    show_default=True,
    help="Dify release to play: the nearest emulated profile at or below it (docs/emulator.md).",
)
def emulator(host: str, port: int, dsl_dir: str | None, dify_version: str) -> None:
    """Run the Dify Service API emulator on its own (API under /v1)."""
    import uvicorn

    from bridge.emulator import EmulatorConfig, create_emulator_app, emulator_apps
    from bridge.launch.demo import REPO_DSL_DIR

    config = EmulatorConfig(
        dsl_dir=Path(dsl_dir) if dsl_dir else REPO_DSL_DIR, dify_version=dify_version
    )
    try:
        config.profile  # noqa: B018 - validates the version before anything starts
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--dify-version") from None
    app = create_emulator_app(config)
    for name, key in sorted(emulator_apps(app).items()):
        click.echo(f"app {name}: key {key}")
    click.echo(f"Dify API: http://{host}:{port}/v1")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@main.command()
@click.option(
    "--config", "config", type=click.Path(dir_okay=False), default=None, envvar="BRIDGE_CONFIG"
)
def check(config: str | None) -> None:
    """Check every managed model against Dify: key, app, mode, inputs. Exit 1 on a failure."""
    import asyncio

    from bridge.launch.check import check_config, render_table
    from bridge.logging import configure_logging

    settings = _load(config)
    configure_logging("warning", settings.log_format)
    report = asyncio.run(check_config(settings))
    where = "the built-in emulator, demo mode" if report.demo else "DIFY_API_URL"
    click.echo(f"Dify: {report.dify_url} ({where})")
    for line in report.version_lines:
        click.echo(line)
    if report.dify_problem:
        click.echo(f"Dify: FAIL: {report.dify_problem}")
    if report.models:
        for line in render_table(report):
            click.echo(line)
    else:
        click.echo("No managed models configured: passthrough clients bring their own keys.")
    failed = [m.model for m in report.models if not m.ok]
    if report.dify_problem or failed:
        click.echo(f"FAILED: {', '.join(failed) or 'Dify'}", err=True)
        sys.exit(1)
    click.echo(f"OK: {len(report.models)} model(s)")


@main.command()
@click.option(
    "--config", "config", type=click.Path(dir_okay=False), default=None, envvar="BRIDGE_CONFIG"
)
def models(config: str | None) -> None:
    """List the model ids clients will see (the same list as GET /v1/models)."""
    import msgspec

    from bridge.routing import ModelRegistry

    settings = _load(config)
    if settings.demo_mode:
        # What the served app lists in demo mode: the emulator's sample apps as models
        # (bridge.launch.demo), read from the same DSL files without starting the emulator.
        from bridge.emulator import EmulatorConfig, create_emulator_app, emulator_apps
        from bridge.launch.demo import demo_models, dsl_dir

        apps = emulator_apps(create_emulator_app(EmulatorConfig(dsl_dir=dsl_dir(settings))))
        settings = msgspec.structs.replace(settings, models=demo_models(settings, apps))
    registry = ModelRegistry(settings, settings.dify_api_url or "http://emulator/v1")
    for model_id in registry.listed_ids():
        click.echo(model_id)


@main.command()
@click.argument("dsl_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--dify-url", envvar="DIFY_API_URL", help="Dify base URL (…/v1 is fine too).")
@click.option("--model", "models", multiple=True, help="Model name per DSL file, in order.")
@click.option(
    "--write-config",
    type=click.Path(dir_okay=False),
    envvar="BRIDGE_CONFIG",
    help="Bridge YAML config to create/update (default: BRIDGE_CONFIG).",
)
@admin_options  # --admin-email, --admin-password, --admin-name, --init-password
def provision(
    dsl_files: tuple[str, ...],
    dify_url: str | None,
    models: tuple[str, ...],
    write_config: str | None,
    **admin: Any,
) -> None:
    """Import Dify DSL files, publish them, create API keys, and write the bridge config."""
    sys.exit(run_provision(dsl_files, dify_url, models, write_config, **admin))


if __name__ == "__main__":
    main()
