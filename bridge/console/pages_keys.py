"""Keys page: create bridge keys (shown once, stored hashed), revoke them, see their use."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template

from bridge.console.quota import remaining
from bridge.console.security import require_admin
from bridge.console.state import Console
from bridge.console.web import Form


def _console(request: Request) -> Console:
    return request.app.state.console


async def _page(request: Request, **extra: Any) -> Template:
    console = _console(request)
    assert console.keys is not None
    rows = []
    for record in await console.keys.all():
        used = await console.keys.used(record)
        rows.append(
            {
                "record": record,
                "today": await console.keys.used_on(record.key_sha256, "day"),
                "used": used,
                "remaining": remaining(used, record.budget_tokens),
                "last_used": await console.keys.last_used(record.key_sha256),
            }
        )
    context = {
        "page": "keys",
        "rows": rows,
        "new_key": None,
        "error": None,
        "models": request.app.state.registry.listed_ids(),
    }
    context.update(extra)
    return Template("keys.html", context=context, status_code=extra.pop("status", 200))


@get("/keys", guards=[require_admin])
async def keys_page(request: Request) -> Template:
    return await _page(request)


def _count(data: dict[str, str], name: str) -> int | None:
    raw = data.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name.replace('_', ' ')} must be a whole number of at least 1")
    return int(raw)


@post("/keys/create", guards=[require_admin], status_code=200)
async def create(request: Request) -> Template:
    console = _console(request)
    assert console.keys is not None
    form = await request.form()
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    name = data.get("name", "").strip()
    if not name or len(name) > 64:
        return await _page(request, error="Give the key a name (up to 64 characters).", status=422)
    try:
        streams = _count(data, "concurrent_streams")
        rpm = _count(data, "requests_per_minute")
        budget = _count(data, "budget_tokens")
    except ValueError as exc:
        return await _page(request, error=str(exc), status=422)
    period = data.get("budget_period", "day")
    if period not in ("day", "month"):
        return await _page(request, error="The budget period is a day or a month.", status=422)
    known = set(request.app.state.registry.listed_ids())
    models = [m for m in form.getall("models", []) if isinstance(m, str) and m in known]
    key, record = await console.keys.create(
        name,
        models=models,
        concurrent_streams=streams,
        requests_per_minute=rpm,
        budget_tokens=budget,
        budget_period=period,  # type: ignore[arg-type]
    )
    await console.keys_changed()
    return await _page(request, new_key={"key": key, "name": record.name})


@post("/keys/{key_id:str}/revoke", guards=[require_admin], status_code=303)
async def revoke(request: Request, key_id: str, data: Form) -> Redirect:
    console = _console(request)
    assert console.keys is not None
    await console.keys.revoke(key_id)
    await console.keys_changed()
    return Redirect("/console/keys", status_code=303)
