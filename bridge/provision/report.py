"""The text `dify-bridge provision` prints: a table of models and what to paste into a client.

Keys are masked everywhere: the full ones are in the config file, which is 0600.
"""

from __future__ import annotations

from .config import mask
from .plan import Outcome

_COLUMNS = ("model", "app", "mode", "app id", "Dify key", "this run")


def render(outcome: Outcome) -> list[str]:
    rows = [
        (
            p.model,
            p.app_name,
            p.app_mode,
            p.app_id,
            mask(p.app_key),
            ", ".join(p.actions) or "nothing changed",
        )
        for p in outcome.models
    ]
    widths = [max(len(str(r[i])) for r in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [_COLUMNS, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for p in outcome.models:
        lines.extend(f"warning: {w}" for w in p.warnings)
    config = outcome.config
    keys = config.get("api_keys") or []
    bridge_key = str(keys[0]) if keys else ""
    where = f"api_keys in {outcome.config_path}"
    key_note = "new, " + where if outcome.new_bridge_key else where
    lines += [
        "",
        f"Config written: {outcome.config_path} (mode 0600)",
        "OpenAI / FastGPT settings (start the bridge with: "
        f"dify-bridge serve --config {outcome.config_path}):",
        f"  Base URL : {_base_url(config)}",
        f"  Key      : {mask(bridge_key) if bridge_key else '(none)'}  (full key: {key_note})",
        f"  Model    : {', '.join(p.model for p in outcome.models)}",
    ]
    return lines


def _base_url(config: dict) -> str:
    host = str(config.get("host") or "127.0.0.1")
    if host in ("0.0.0.0", "::", "[::]"):  # noqa: S104 - displaying, not binding
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{config.get('port') or 8000}/v1"
