"""The console's own settings, read from the environment (docker/README.md lists them).

They live here rather than in bridge.settings: nothing below the console reads them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bridge.settings import ConfigError, Settings

ADMIN_KEY_FILE = "console-admin-key"
_MIN_KEY = 24


@dataclass(frozen=True)
class ConsoleConfig:
    data_dir: Path
    store_url: str  # the bridge's store: sqlite:///… or redis://…
    admin_key: str | None  # from BRIDGE_ADMIN_KEY; None: the generated one in data_dir
    # Served through a public tunnel too (`dify-bridge start --tunnel --console-public`).
    public: bool = False
    log_conversations: bool = False
    log_retention_days: float = 7.0
    log_max_rows: int = 10_000
    ring_size: int = 1000
    session_seconds: int = 12 * 3600

    @property
    def memory(self) -> bool:
        """A store that keeps nothing (memory://, sqlite:///:memory:): neither does the
        console, and it writes no files (tests build many apps)."""
        return self.store_url.startswith("memory:") or self.store_url.endswith(":memory:")

    @property
    def redis(self) -> bool:
        return self.store_url.partition("://")[0].lower() in {"redis", "rediss"}


def data_dir_for(settings: Settings, env: Mapping[str, str]) -> Path:
    """BRIDGE_DATA_DIR, else the folder of the SQLite store (./data by default)."""
    if env.get("BRIDGE_DATA_DIR", "").strip():
        return Path(env["BRIDGE_DATA_DIR"].strip())
    scheme, _, rest = settings.store.partition("://")
    if scheme.lower() == "sqlite" and rest and rest != "/:memory:":
        return Path(rest[1:] if rest.startswith("/") else rest).parent
    return Path("data")


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}: expected true or false, got {raw!r}")


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum:g}")
    return value


def load_console_config(settings: Settings, env: Mapping[str, str] | None = None) -> ConsoleConfig:
    env = os.environ if env is None else env
    admin = env.get("BRIDGE_ADMIN_KEY", "").strip() or None
    if admin is not None and len(admin) < 12:
        raise ConfigError("BRIDGE_ADMIN_KEY: use at least 12 characters")
    return ConsoleConfig(
        data_dir=data_dir_for(settings, env),
        store_url=settings.store,
        admin_key=admin,
        public=_flag(env, "BRIDGE_CONSOLE_PUBLIC"),
        log_conversations=_flag(env, "BRIDGE_LOG_CONVERSATIONS"),
        log_retention_days=_number(env, "BRIDGE_LOG_RETENTION_DAYS", 7.0, 0.01),
        log_max_rows=int(_number(env, "BRIDGE_LOG_MAX_ROWS", 10_000, 1)),
        ring_size=int(_number(env, "BRIDGE_CONSOLE_RING", 1000, 10)),
    )


def admin_key(config: ConsoleConfig) -> tuple[str, bool]:
    """(key, created): BRIDGE_ADMIN_KEY, else the key kept 0600 in the data directory,
    generated on first start (the start banner prints it once)."""
    if config.admin_key:
        return config.admin_key, False
    if config.memory:
        return "adm-" + secrets.token_urlsafe(24), True
    path = config.data_dir / ADMIN_KEY_FILE
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for _ in range(50):
        with contextlib.suppress(FileNotFoundError, UnicodeDecodeError):
            key = path.read_text(encoding="utf-8").strip()
            if len(key) >= _MIN_KEY:
                with contextlib.suppress(OSError):
                    path.chmod(0o600)
                return key, False
        key = "adm-" + secrets.token_urlsafe(24)
        try:
            # O_EXCL: of several workers starting at once, one writes it and the others read
            # it (retrying while it is still being written); 0600 from the first byte.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            time.sleep(0.02)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(key + "\n")
        return key, True
    raise ConfigError(f"{path}: not a usable admin key file (remove it to generate a new key)")
