"""The operator console at /console (issue 20): a package above bridge.http that the launcher
mounts through bridge.http.app.Extension. Nothing below it imports it."""

from __future__ import annotations

from pathlib import Path

from litestar.middleware.base import DefineMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from bridge.console.config import admin_key, load_console_config
from bridge.console.gate import ConsoleGate
from bridge.console.state import Console
from bridge.http.app import Extension
from bridge.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"


def console_extension(settings: Settings) -> Extension:
    from bridge.console import pages, pages_keys, pages_models
    from bridge.console.web import console_router

    config = load_console_config(settings)
    key, _ = admin_key(config)
    console = Console(config, key)
    handlers = [
        pages.overview,
        pages.live,
        pages.requests_page,
        pages.connect,
        pages.playground,
        pages_models.models_page,
        pages_models.preview,
        pages_models.save,
        pages_models.delete,
        pages_keys.keys_page,
        pages_keys.create,
        pages_keys.revoke,
    ]
    return Extension(
        route_handlers=[console_router(console, handlers)],
        middleware=[DefineMiddleware(ConsoleGate, console=console)],
        lifespan=[console.lifespan],
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
    )


__all__ = ["console_extension"]
