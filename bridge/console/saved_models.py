"""Models saved in the console: stored (namespace `model`), merged into the live registry,
and picked up by every worker and replica by polling a version counter.

The Dify app key is write-only: the pages only ever show its first characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Literal

import msgspec
import structlog

from bridge.console.kv import KV
from bridge.routing import ModelRegistry
from bridge.settings import ModelConfig

log = structlog.get_logger("bridge.console")

POLL_SECONDS = 2.0  # well inside the 5 s the issue allows for other replicas
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")


class SavedModel(msgspec.Struct, kw_only=True):
    id: str
    dify_url: str
    app_key: str
    aliases: list[str] = []
    reasoning: Literal["off", "reasoning_content", "think"] | None = None
    background_tasks: Literal["local", "run", "reject"] = "local"
    app_name: str = ""
    app_mode: str = ""
    saved: float = 0.0

    @property
    def key_hint(self) -> str:
        return self.app_key[:6] + "…" if len(self.app_key) > 10 else "…"

    def configs(self) -> list[ModelConfig]:
        """The model and one entry per alias, all served by the same app."""
        return [
            ModelConfig(
                id=name,
                app_key=self.app_key,
                dify_url=self.dify_url,
                reasoning=self.reasoning,
                background_tasks=self.background_tasks,
            )
            for name in [self.id, *self.aliases]
        ]


def check_name(name: str) -> str | None:
    """An error message for a model name or alias no client could send, else None."""
    if not _NAME.match(name):
        return (
            f"{name!r} is not a usable model name: 1-128 letters, digits and _ . : / -, "
            "starting with a letter or digit"
        )
    return None


_decode = msgspec.json.Decoder(SavedModel).decode


class ModelStore:
    def __init__(self, kv: KV) -> None:
        self.kv = kv

    async def all(self) -> list[SavedModel]:
        models = [_decode(raw) for raw in (await self.kv.items("model")).values()]
        return sorted(models, key=lambda m: m.id)

    async def get(self, model_id: str) -> SavedModel | None:
        raw = await self.kv.get("model", model_id)
        return _decode(raw) if raw is not None else None

    async def save(self, model: SavedModel) -> None:
        model.saved = time.time()
        await self.kv.put("model", model.id, msgspec.json.encode(model))
        await self.kv.incr("meta", "models")

    async def remove(self, model_id: str) -> bool:
        if await self.get(model_id) is None:
            return False
        await self.kv.delete("model", model_id)
        await self.kv.incr("meta", "models")
        return True

    async def version(self, name: str) -> int:
        raw = await self.kv.get("meta", name)
        return int(raw) if raw is not None else 0


async def sync_registry(registry: ModelRegistry, models: ModelStore, issued: bool) -> None:
    saved = await models.all()
    registry.set_saved_models([config for model in saved for config in model.configs()])
    registry.keys_issued = issued


async def poll(registry: ModelRegistry, models: ModelStore, keys_issued: object) -> None:
    """Reload when another worker or replica changed the models or issued the first key."""
    seen: tuple[int, int] | None = None
    while True:
        with contextlib.suppress(Exception):
            current = (await models.version("models"), await models.version("keys"))
            if current != seen:
                await sync_registry(registry, models, await keys_issued())  # type: ignore[operator]
                seen = current
        await asyncio.sleep(POLL_SECONDS)
