"""The start-up check: every upstream of a model must serve the same kind of app.

Run by `dify-bridge serve` before the server starts. Upstreams that do not answer are left to
the server (marked down at start, probed later); two that answer differently stop start-up
with one line naming the model, the upstream and the field.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec

from bridge.dify.client import DifyClient, DifyTarget
from bridge.settings import ConfigError, ModelConfig, Settings


class AppShape(msgspec.Struct, frozen=True):
    mode: str | None
    required: tuple[str, ...]


def required_inputs(parameters: Any) -> tuple[str, ...]:
    """The variables of `user_input_form` a run cannot go without."""
    names: list[str] = []
    form = parameters.get("user_input_form") if isinstance(parameters, dict) else None
    for item in form or []:
        for spec in item.values() if isinstance(item, dict) else ():
            if isinstance(spec, dict) and spec.get("required") and spec.get("variable"):
                names.append(str(spec["variable"]))
    return tuple(sorted(names))


async def app_shape(dify: DifyClient, target: DifyTarget, seconds: float) -> AppShape | None:
    """Mode and required inputs of the app, or None if it cannot be read now."""
    try:
        async with asyncio.timeout(seconds):
            info = await dify.info(target)
            parameters = await dify.parameters(target)
    except Exception:  # unreachable, bad key, old Dify: the server marks it down
        return None
    return AppShape(info.mode, required_inputs(parameters))


def compare(model: ModelConfig, where: str, shapes: list[AppShape | None]) -> None:
    reference: tuple[str, AppShape] | None = None
    for index, (upstream, shape) in enumerate(zip(model.upstreams or [], shapes, strict=True)):
        if shape is None:
            continue
        if reference is None:
            reference = (upstream.name or "", shape)
            continue
        name, first = reference
        at = f"{where}.upstreams[{index}]"
        if shape.mode and first.mode and shape.mode != first.mode:
            raise ConfigError(
                f"{at}.mode: model {model.id!r}: upstream {upstream.name!r} serves mode "
                f"{shape.mode}, upstream {name!r} mode {first.mode}"
            )
        if shape.required != first.required:
            raise ConfigError(
                f"{at}.inputs: model {model.id!r}: upstream {upstream.name!r} requires inputs "
                f"{list(shape.required)}, upstream {name!r} {list(first.required)}"
            )


async def check_groups(settings: Settings) -> None:
    """Raise ConfigError when the upstreams of a model serve different kinds of app."""
    groups = [(i, m) for i, m in enumerate(settings.models) if m.upstreams]
    if not groups:
        return
    timeout = settings.connect_timeout + 5.0
    async with httpx.AsyncClient(trust_env=False, timeout=timeout) as http:
        dify = DifyClient(http)
        for index, model in groups:
            shapes = await asyncio.gather(
                *(
                    app_shape(dify, DifyTarget(u.dify_url or "", u.app_key), timeout)
                    for u in model.upstreams or []
                )
            )
            compare(model, f"models[{index}]", list(shapes))
