"""Read, edit and write the bridge's YAML config for provisioning.

The file is handled as plain YAML (no `${VAR}` interpolation), so references the user wrote stay
references. It is written atomically with mode 0600: it holds Dify app keys and bridge keys.
Comments in an existing file are not preserved (PyYAML drops them).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import string
import tempfile
from pathlib import Path
from typing import Any

import yaml

BRIDGE_KEY_PREFIX = "sk-"
_KEY_ALPHABET = string.ascii_letters + string.digits


class ConfigFileError(Exception):
    """The existing config cannot be used; the message names the file."""


def read_config(path: Path) -> dict[str, Any]:
    """The config as a mapping; {} when the file does not exist yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigFileError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"config file {path} is not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigFileError(f"config file {path}: expected a mapping at the top level")
    models = loaded.get("models")
    if models is not None and not (
        isinstance(models, list) and all(isinstance(m, dict) for m in models)
    ):
        raise ConfigFileError(f"config file {path}: `models` must be a list of mappings")
    return loaded


def find_model(config: dict[str, Any], model_id: str) -> dict[str, Any] | None:
    for entry in config.get("models") or []:
        if entry.get("id") == model_id:
            return entry
    return None


def model_entry(config: dict[str, Any], model_id: str) -> dict[str, Any]:
    """The `models:` entry for `model_id`, added (with `mode: auto`) when missing."""
    entry = find_model(config, model_id)
    if entry is None:
        entry = {"id": model_id, "mode": "auto"}
        config.setdefault("models", [])
        if config["models"] is None:
            config["models"] = []
        config["models"].append(entry)
    return entry


def point_at_dify(config: dict[str, Any], entry: dict[str, Any], service_url: str) -> None:
    """Make the model reach this Dify: the global `dify_api_url` when the config has none (or
    the same), else a per-model `dify_url`, so other models keep theirs."""
    current = config.get("dify_api_url")
    if not current:
        config["dify_api_url"] = service_url
    if config["dify_api_url"] == service_url:
        entry.pop("dify_url", None)
    else:
        entry["dify_url"] = service_url


def new_bridge_key() -> str:
    """`sk-` + 48 letters/digits (~285 bits), for clients of the bridge."""
    return BRIDGE_KEY_PREFIX + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(48))


def ensure_bridge_key(config: dict[str, Any]) -> str | None:
    """Give the config a bridge key when it has none, so provisioned models are not open.
    Returns the new key, or None when the config already had keys."""
    if config.get("api_keys"):
        return None
    key = new_bridge_key()
    config["api_keys"] = [key]
    return key


def write_config(path: Path, config: dict[str, Any]) -> None:
    """Write atomically (temp file + rename in the same folder) with mode 0600 from the start,
    so the keys are never readable by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, default_flow_style=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)  # mkstemp already uses 0600; say so explicitly
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def mask(secret: str | None) -> str:
    """`app-…wxyz` / `sk-…wxyz`: enough to tell keys apart, not enough to use one."""
    if not secret:
        return "-"
    prefix = secret.split("-", 1)[0] + "-" if "-" in secret[:5] else ""
    if len(secret) < len(prefix) + 12:
        return prefix + "…"
    return f"{prefix}…{secret[-4:]}"
