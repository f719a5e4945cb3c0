"""Models page: add a Dify app by URL + key (read `/info` and `/parameters` first), edit,
remove. Saved models are live at once (bridge.console.saved_models)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template

from bridge.console.saved_models import SavedModel, check_name
from bridge.console.security import require_admin
from bridge.console.state import Console
from bridge.console.web import Form
from bridge.dify.client import DifyTarget


def _console(request: Request) -> Console:
    return request.app.state.console


async def _page(request: Request, **extra: Any) -> Template:
    console = _console(request)
    assert console.models is not None
    registry = request.app.state.registry
    saved = await console.models.all()
    saved_ids = {name for m in saved for name in [m.id, *m.aliases]}
    configured = [
        {"id": mid, "url": cfg.dify_url or registry.base_url, "mode": cfg.mode}
        for mid, cfg in registry.models.items()
        if cfg.app_key and mid not in saved_ids
    ]
    context = {
        "page": "models",
        "saved": saved,
        "configured": configured,
        "preview": None,
        "error": None,
        "form": {},
    }
    context.update(extra)
    return Template("models.html", context=context, status_code=extra.pop("status", 200))


@get("/models", guards=[require_admin])
async def models_page(request: Request) -> Template:
    return await _page(request)


def _form_model(data: dict[str, str]) -> tuple[SavedModel | None, str | None]:
    url = data.get("dify_url", "").strip().rstrip("/")
    key = data.get("app_key", "").strip()
    name = data.get("id", "").strip()
    aliases = [a.strip() for a in data.get("aliases", "").split(",") if a.strip()]
    if not url.startswith(("http://", "https://")):
        return None, "The Dify API URL must start with http:// or https:// (e.g. http://dify/v1)."
    if not key:
        return None, "The app's API key is needed (Dify → the app → API Access)."
    for candidate in [name, *aliases] if name else aliases:
        if (problem := check_name(candidate)) is not None:
            return None, problem
    reasoning = data.get("reasoning") or None
    if reasoning not in (None, "off", "reasoning_content", "think"):
        return None, "Unknown reasoning format."
    background = data.get("background_tasks") or "local"
    if background not in ("local", "run", "reject"):
        return None, "Unknown background-tasks setting."
    return SavedModel(
        id=name,
        dify_url=url,
        app_key=key,
        aliases=aliases,
        reasoning=reasoning,
        background_tasks=background,
    ), None  # type: ignore[arg-type]


@post("/models/preview", guards=[require_admin], status_code=200)
async def preview(request: Request, data: Form) -> Template:
    """Read the app's /info and /parameters and show them with the form to save it."""
    model, error = _form_model(data)
    form = {k: v for k, v in data.items() if k not in ("app_key", "_csrf_token")}
    if model is None:
        return await _page(request, error=error, form=form, status=422)
    dify = request.app.state.chat_service.dify
    target = DifyTarget(model.dify_url, model.app_key)
    try:
        info = await dify.info(target)
        parameters = await dify.parameters(target)
    except Exception as exc:
        return await _page(
            request,
            error=f"Dify did not accept the app key or could not be "
            f"reached ({type(exc).__name__}).",
            form=form,
            status=422,
        )
    inputs = []
    for item in parameters.get("user_input_form") or []:
        for kind, spec in (item or {}).items():
            if isinstance(spec, dict):
                inputs.append(
                    {
                        "variable": str(spec.get("variable", "")),
                        "kind": kind,
                        "required": bool(spec.get("required")),
                    }
                )
    uploads = bool((parameters.get("file_upload") or {}).get("enabled")) or bool(
        ((parameters.get("file_upload") or {}).get("image") or {}).get("enabled")
    )
    form.setdefault("id", info.name)
    if not form.get("id"):
        form["id"] = info.name
    preview = {"name": info.name, "mode": info.mode or "?", "inputs": inputs, "uploads": uploads}
    # The key goes back in the form only as a hidden field of the save step, never shown.
    return await _page(request, preview=preview, form=form, pending_key=model.app_key)


@post("/models/save", guards=[require_admin], status_code=303)
async def save(request: Request, data: Form) -> Any:
    console = _console(request)
    assert console.models is not None
    model, error = _form_model(data)
    form = {k: v for k, v in data.items() if k not in ("app_key", "_csrf_token")}
    if model is None or not model.id:
        return await _page(request, error=error or "Give the model a name.", form=form, status=422)
    registry = request.app.state.registry
    existing = await console.models.get(model.id)
    taken = [
        n
        for n in [model.id, *model.aliases]
        if n in registry._configured or n in registry.settings.aliases
    ]
    if taken:
        return await _page(
            request,
            error=f"{taken[0]!r} is a model of the config file or the "
            "environment; pick another name.",
            form=form,
            status=422,
        )
    model.app_name = data.get("app_name", "")[:200]
    model.app_mode = data.get("app_mode", "")[:40]
    if existing is not None and not data.get("app_key"):
        model.app_key = existing.app_key
    await console.models.save(model)
    await console.keys_changed()
    return Redirect("/console/models", status_code=303)


@post("/models/{model_id:str}/delete", guards=[require_admin], status_code=303)
async def delete(request: Request, model_id: str) -> Redirect:
    console = _console(request)
    assert console.models is not None
    await console.models.remove(model_id)
    await console.keys_changed()
    return Redirect("/console/models", status_code=303)
