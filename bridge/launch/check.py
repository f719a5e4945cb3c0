"""`dify-bridge check`: every managed model against the live Dify (or the demo emulator).

For each model: does Dify answer, is the key accepted, what is the app called, which mode
it really has (against the configured one), and which inputs its form declares.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec

from bridge.dify.client import (
    AppInfo,
    DifyAPIError,
    DifyClient,
    DifyTarget,
    DifyTimeout,
    DifyUnreachable,
)
from bridge.dify.versions import fetch_server_version, limitations
from bridge.engine.modes import AppModeCache
from bridge.http.readiness import probe_dify
from bridge.routing import ModelRegistry
from bridge.settings import ModelConfig, Settings


class AppInput(msgspec.Struct, frozen=True):
    variable: str
    required: bool


class ModelCheck(msgspec.Struct, kw_only=True):
    model: str
    configured_mode: str
    app_name: str | None = None
    actual_mode: str | None = None
    inputs: list[AppInput] = []
    problem: str | None = None  # None: the model works

    @property
    def mode_mismatch(self) -> bool:
        return (
            self.configured_mode != "auto"
            and self.actual_mode is not None
            and self.configured_mode != self.actual_mode
        )

    @property
    def ok(self) -> bool:
        return self.problem is None and not self.mode_mismatch


class CheckReport(msgspec.Struct, kw_only=True):
    dify_url: str
    demo: bool
    dify_problem: str | None
    models: list[ModelCheck]
    dify_version: str | None = None  # `server_version` from GET /v1/

    @property
    def version_lines(self) -> list[str]:
        """The Dify release and, one line each, what it lacks (dify/versions.py)."""
        if self.dify_version is None:
            return ["Dify version: unknown (GET /v1/ did not say)"] if not self.dify_problem else []
        return [f"Dify version: {self.dify_version}"] + [
            f"  note: {text}" for text in limitations(self.dify_version)
        ]

    @property
    def ok(self) -> bool:
        return self.dify_problem is None and all(model.ok for model in self.models)


def form_inputs(parameters: dict[str, Any]) -> list[AppInput]:
    """`user_input_form` is a list of one-key objects: `{"text-input": {"variable", …}}`."""
    inputs = []
    for item in parameters.get("user_input_form") or []:
        if not isinstance(item, dict):
            continue
        for field in item.values():
            if isinstance(field, dict) and field.get("variable"):
                inputs.append(AppInput(str(field["variable"]), bool(field.get("required"))))
    return inputs


async def _check_model(
    dify: DifyClient, model_id: str, mode: str, target: DifyTarget
) -> ModelCheck:
    result = ModelCheck(model=model_id, configured_mode=mode)
    try:
        info: AppInfo
        info, parameters = await asyncio.gather(dify.info(target), dify.parameters(target))
    except DifyAPIError as exc:
        if exc.status in (401, 403):
            result.problem = f"key rejected (HTTP {exc.status})"
        else:
            result.problem = f"Dify answered HTTP {exc.status} ({exc.code or 'no code'})"
        return result
    except DifyUnreachable:
        result.problem = "Dify unreachable"
        return result
    except DifyTimeout:
        result.problem = "Dify did not answer in time"
        return result
    result.app_name = info.name
    result.actual_mode = info.mode
    if info.mode is None:  # Dify < 1.4 has no mode in /info: ask without running the app
        with contextlib.suppress(DifyAPIError, DifyUnreachable, DifyTimeout):
            result.actual_mode = await AppModeCache(dify, ttl=0).probe(target)
    result.inputs = form_inputs(parameters)
    return result


@contextlib.asynccontextmanager
async def _dify_base(settings: Settings) -> AsyncIterator[tuple[str, Settings]]:
    if not settings.demo_mode:
        assert settings.dify_api_url is not None
        yield settings.dify_api_url, settings
        return
    from bridge.launch.demo import demo_models, running_emulator

    async with running_emulator(settings) as (base_url, apps):
        yield base_url, msgspec.structs.replace(settings, models=demo_models(settings, apps))


async def check_config(settings: Settings) -> CheckReport:
    async with _dify_base(settings) as (base_url, effective):
        registry = ModelRegistry(effective, base_url)
        timeout = httpx.Timeout(10.0, connect=min(settings.connect_timeout, 10.0))
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
            dify = DifyClient(http)
            reachable, version = await asyncio.gather(
                probe_dify(http, base_url), fetch_server_version(http, base_url)
            )
            models = await asyncio.gather(
                *(
                    _check_model(dify, label, registry.models[model_id].mode, target)
                    for model_id in registry.managed_ids
                    for label, target in _targets(registry.models[model_id], base_url)
                )
            )
    return CheckReport(
        dify_url=base_url,
        demo=settings.demo_mode,
        dify_problem=reachable.detail if not reachable.ok else None,
        models=list(models),
        dify_version=version,
    )


def _targets(model: ModelConfig, base_url: str) -> list[tuple[str, DifyTarget]]:
    """One row per app: a model with several upstreams (docs/upstreams.md) gets one per
    upstream, labelled `model [upstream name]`, so each one's reachability, mode and key
    show."""
    if not model.upstreams:
        return [(model.id, DifyTarget(model.dify_url or base_url, model.app_key or ""))]
    return [
        (f"{model.id} [{u.name}]", DifyTarget(u.dify_url or base_url, u.app_key))
        for u in model.upstreams
    ]


def render_table(report: CheckReport) -> list[str]:
    """Plain fixed-width text: it goes to terminals and CI logs alike."""
    rows = [("MODEL", "APP", "MODE (configured → actual)", "INPUTS (* required)", "STATUS")]
    for model in report.models:
        if model.actual_mode is None:
            mode = model.configured_mode
        elif model.mode_mismatch:
            mode = f"{model.configured_mode} ≠ {model.actual_mode}  MISMATCH"
        else:
            mode = f"{model.configured_mode} → {model.actual_mode}"
        inputs = ", ".join(f"{i.variable}{'*' if i.required else ''}" for i in model.inputs)
        if model.problem:
            status = f"FAIL: {model.problem}"
        elif model.mode_mismatch:
            status = "FAIL: mode mismatch"
        else:
            status = "ok (reachable, key valid)"
        rows.append((model.model, model.app_name or "-", mode, inputs or "-", status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
