"""Demo mode: with no Dify configured, serve the built-in emulator on a loopback port.

It runs as its own uvicorn server inside the bridge process, so the bridge talks to it over
real HTTP exactly as it would to Dify, and the emulator's own lifespan runs normally.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import structlog
import uvicorn

from bridge.settings import ModelConfig, Settings

log = structlog.get_logger("bridge.launch.demo")

REPO_DSL_DIR = Path(__file__).resolve().parents[2] / "dify-dsl"  # bridge/launch/ -> repo
DEMO_APP = "Cat_LLM"


def dsl_dir(settings: Settings) -> Path:
    return Path(settings.emulator_dsl_dir) if settings.emulator_dsl_dir else REPO_DSL_DIR


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def demo_models(settings: Settings, apps: dict[str, str]) -> list[ModelConfig]:
    """`model_name` (o1) → Cat_LLM; every other sample app under its own name."""
    models = list(settings.models)
    taken = {m.id for m in models}
    for name, key in apps.items():
        model_id = settings.model_name if name == DEMO_APP else name
        if model_id not in taken:
            models.append(ModelConfig(id=model_id, app_key=key, owned_by="dify-emulator"))
            taken.add(model_id)
    return models


@contextlib.asynccontextmanager
async def demo_upstream(settings: Settings) -> AsyncIterator[tuple[str, Settings]]:
    """Demo mode's Dify for the HTTP app: the emulator's URL and the settings with its apps
    added as models."""
    async with running_emulator(settings) as (base_url, apps):
        yield base_url, msgspec.structs.replace(settings, models=demo_models(settings, apps))


@contextlib.asynccontextmanager
async def running_emulator(settings: Settings) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """Start the emulator; yield its `/v1` base URL and its apps (name → key)."""
    from bridge.emulator import EmulatorConfig, create_emulator_app, emulator_apps

    app = create_emulator_app(EmulatorConfig(dsl_dir=dsl_dir(settings)))
    port = _free_port()
    server = uvicorn.Server(
        # log_config=None: this server shares the bridge's process, whose logging
        # (uvicorn's loggers through structlog, bridge.logging) it must not reconfigure.
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", log_config=None
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the demo Dify emulator did not start")
        await asyncio.sleep(0.02)
    log.info(
        "demo_emulator_started", url=f"http://127.0.0.1:{port}/v1", apps=sorted(emulator_apps(app))
    )
    try:
        yield f"http://127.0.0.1:{port}/v1", emulator_apps(app)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
