"""Which key a client sends, and the key a public tunnel requires.

A quick tunnel publishes the bridge to the whole internet: models served with the server's own
Dify key must then need a bridge key. Without BRIDGE_API_KEYS one is generated once and kept in
a 0600 file, so the key saved in FastGPT keeps working across restarts. Passthrough-only
set-ups need nothing: there the client's own Dify app key is the secret.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bridge.launch.errors import LaunchError
from bridge.settings import Settings

KEY_FILE_NAME = "tunnel-api-key"
_MIN_KEY = len("sk-") + 22  # shorter contents are not a key we made: make a new one


def needs_tunnel_key(settings: Settings) -> bool:
    """Models answered with the server's own Dify key, and no bridge key to guard them."""
    managed = (
        settings.demo_mode or bool(settings.dify_api_key) or any(m.app_key for m in settings.models)
    )
    return managed and not settings.api_keys


@dataclass(frozen=True)
class TunnelKey:
    key: str
    path: Path
    created: bool


def tunnel_key(data_dir: Path) -> TunnelKey:
    """The key kept in `data_dir`/tunnel-api-key: reused when present, else generated. The
    folder is made 0700 when new, the file is 0600 from its first byte."""
    path = data_dir / KEY_FILE_NAME
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise LaunchError(
            f"cannot create {data_dir} for the tunnel's API key ({exc.strerror or exc}); "
            "set BRIDGE_DATA_DIR"
        ) from exc
    existing = _read_key(path)
    if existing is not None:
        _restrict(path)
        return TunnelKey(existing, path, created=False)
    key = "sk-" + secrets.token_urlsafe(32)
    try:
        _write_private(path, key + "\n")
    except OSError as exc:
        raise LaunchError(f"cannot write {path} ({exc.strerror or exc})") from exc
    return TunnelKey(key, path, created=True)


def _read_key(path: Path) -> str | None:
    # A missing file is the normal first run: nothing to report (issue 17: the old script
    # printed "No such file or directory" here).
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    except OSError as exc:
        raise LaunchError(f"cannot read {path} ({exc.strerror or exc})") from exc
    key = "".join(text.split())
    return key if key.startswith("sk-") and len(key) >= _MIN_KEY else None


def _restrict(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.chmod(0o600)


def _write_private(path: Path, text: str) -> None:
    """Temp file (mkstemp: 0600) in the same folder, then rename: never readable by others,
    never half written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        _restrict(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class ClientKey:
    """What the banner tells a client to send as its key, and why."""

    key: str
    model: str
    note: str


def client_key(settings: Settings) -> ClientKey:
    """From the settings exactly as `serve` reads them (config file and environment)."""
    # A config with models (e.g. written by `provision`) serves those, not BRIDGE_MODEL_NAME.
    model = (
        settings.models[0].id if settings.models and not settings.dify_api_key
        else settings.model_name
    )  # fmt: skip
    if settings.api_keys:
        return ClientKey(settings.api_keys[0], model, "the first of BRIDGE_API_KEYS / api_keys")
    if settings.demo_mode:
        return ClientKey(
            "any-text", model, "demo mode (built-in emulator, no BRIDGE_API_KEYS): any text works"
        )
    if settings.dify_api_key or settings.models or not settings.passthrough:
        return ClientKey(
            "any-text",
            model,
            "no BRIDGE_API_KEYS: the configured models are open, any text works "
            "(set BRIDGE_API_KEYS before sharing a public URL)",
        )
    return ClientKey(
        "app-YOUR-DIFY-APP-KEY",
        model,
        "passthrough mode: your Dify app's API key (app-...), forwarded to Dify",
    )


def masked(key: str) -> str:
    """A provisioned key stays in the 0600 config; show only enough to recognise it."""
    return f"{key[:3]}…{key[-4:]}" if len(key) > 12 else key
