"""Typed settings from environment variables and an optional YAML file.

Precedence: defaults < YAML file (`BRIDGE_CONFIG` / `--config`) < environment variables.
A wrong value stops start-up with one `ConfigError` line that names the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from bridge.settings.limits import LimitsConfig
from bridge.settings.upstreams import (
    BalanceStrategy,
    BreakerConfig,
    OwnerDownPolicy,
    UpstreamConfig,
    check_upstreams,
    parse_upstreams_env,
)

AppMode = Literal["auto", "advanced-chat", "chat", "agent-chat", "completion", "workflow"]
HistoryMode = Literal["conversation", "flatten", "last"]
ReasoningMode = Literal["off", "reasoning_content", "think"]
ModerationMode = Literal["replace", "hold"]
BackgroundTasksMode = Literal["local", "run", "reject"]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the field."""


class ModelConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: str
    # No key: a template whose options apply to passthrough requests for this model id.
    app_key: str | None = None
    mode: AppMode = "auto"
    dify_url: str | None = None
    query_input: str = "query"
    output: str | None = None
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    history: HistoryMode = "conversation"
    reasoning: ReasoningMode | None = None  # None: per-mode default (issue 4)
    system_input: str | None = None
    owned_by: str = "dify"
    # Output moderation in streams (docs/streaming.md): `hold` (default) keeps the answer back
    # until the end when the app has output moderation on, so blocked text never reaches the
    # client; `replace` streams it as it comes and sends Dify's replacement after it (opt-in:
    # lower latency, but the client has already seen what Dify then blocks).
    moderation: ModerationMode = "hold"
    # Append Dify's knowledge citations (`retriever_resources`) as a short sources list.
    citations: bool = False
    # Whitespace keepalive for non-streaming requests; None: `Settings.nonstream_keepalive`.
    nonstream_keepalive: bool | None = None
    # Chat-UI housekeeping requests (titles, tags, follow-ups…; docs/responses.md): `local`
    # answers them in the bridge without a Dify run, `run` sends them to the app like any
    # request, `reject` refuses them with a 400.
    background_tasks: BackgroundTasksMode = "local"
    # Ask Dify to name a new conversation (`auto_generate_name`). Dify <= 1.10 keeps the stream
    # open after the answer while its model writes the title (the bridge answers at the terminal
    # event anyway); false saves that LLM call and leaves conversations unnamed.
    auto_generate_name: bool = True
    # Written by `dify-bridge provision` (docs/provisioning.md): the Dify app this model was
    # imported as and the sha256 of its DSL file, so a re-run finds the app instead of
    # importing a duplicate. The bridge itself does not use them.
    dify_app_id: str | None = None
    dify_dsl_digest: str | None = None
    # Several Dify apps/instances behind this one model (docs/upstreams.md); empty: the
    # single app of `app_key` + `dify_url`.
    upstreams: list[UpstreamConfig] | None = None
    balance: BalanceStrategy = "weighted"
    # Upstreams tried for one request while the run provably did not start (None: all).
    max_attempts: int | None = None
    # A continued conversation whose upstream is down: 503 (default) or a new conversation
    # on a healthy upstream from the resent history.
    on_owner_down: OwnerDownPolicy = "unavailable"
    breaker: BreakerConfig = msgspec.field(default_factory=BreakerConfig)

    def __repr__(self) -> str:
        return f"ModelConfig(id={self.id!r}, mode={self.mode!r}, app_key=<redacted>)"


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Dify Service API base, e.g. http://127.0.0.1/v1. None: serve the built-in emulator.
    dify_api_url: str | None = None
    # The public Dify URL used to make Dify's relative /files/... links absolute.
    dify_public_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: list[str] = msgspec.field(default_factory=list)
    # A key for Prometheus scrapers: `/metrics` accepts it besides the bridge keys (it grants
    # nothing else). Once bridge keys or this key exist, `/metrics` needs one of them.
    metrics_key: str | None = None
    # Clients may bring their own Dify app key (`app-…`). None (not set): on while no bridge
    # keys exist (the zero-config set-up), off once they do — else anyone could still use the
    # bridge with any app key, and probe which keys are valid. `true` keeps it on explicitly.
    passthrough: bool | None = None
    model_name: str = "o1"
    # A Dify app key served as `model_name` (managed single-app set-up).
    dify_api_key: str | None = None
    # `BRIDGE_UPSTREAMS`: an upstream group served as `model_name` (instead of one key).
    upstreams: list[UpstreamConfig] = msgspec.field(default_factory=list)
    balance: BalanceStrategy = "weighted"
    default_model: str | None = None
    aliases: dict[str, str] = msgspec.field(default_factory=dict)
    models: list[ModelConfig] = msgspec.field(default_factory=list)
    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    first_event_timeout: float = 30.0
    # Connections to Dify for streams: one per stream in flight, so this caps the streams a
    # process holds (each also holds a client socket: keep it under half the fd limit).
    upstream_connections: int = 8192
    # A separate pool for control calls (stop, /info, /parameters, /messages): a stop never
    # waits behind the streams it is meant to end. Also how many dying streams are closed
    # (upstream released, stop sent) at a time.
    control_connections: int = 16
    # Deadline for the first event when continuing a conversation (see serving.DifyRun).
    conversation_check_timeout: float = 10.0
    # A client's own stable chat id (Open WebUI: `X-Conversation-Key: {{CHAT_ID}}`).
    conversation_key_header: str = "X-Conversation-Key"
    # A header whose presence marks a background task (Open WebUI: `X-Bridge-Task: {{TASK}}`).
    task_header: str | None = "X-Bridge-Task"
    keepalive_interval: float = 15.0
    # Non-streaming requests: send headers at once and a space every `keepalive_interval` s
    # until the JSON body is ready (errors then arrive with status 200; docs/streaming.md).
    nonstream_keepalive: bool = False
    info_cache_ttl: float = 300.0
    # How long an app's `GET /parameters` (input form, file-upload settings) is reused.
    parameters_cache_ttl: float = 300.0
    store: str = "sqlite:///data/conversations.db"
    store_ttl: float = 7 * 24 * 3600.0
    store_max_entries: int = 100_000
    max_body_bytes: int = 20 * 1024 * 1024
    # Edge limits of the server (bridge/server.py): seconds a client may take to send the
    # request head, and again the body, before the connection is closed (slow-loris); the
    # request head's size; open client connections (None: half the descriptor limit).
    request_timeout: float = 30.0
    max_header_bytes: int = 64 * 1024
    max_connections: int | None = None
    emulator_dsl_dir: str | None = None
    log_level: str = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    cors_origins: list[str] = msgspec.field(default_factory=list)
    # On SIGTERM: seconds running requests (streams) may take to finish before they are cut
    # with an error chunk and their Dify tasks stopped (uvicorn's timeout_graceful_shutdown).
    shutdown_grace: float = 30.0
    # How long a `/readyz` result (Dify reachable, keys accepted) is reused.
    ready_cache_ttl: float = 10.0
    # Per-key concurrent streams and requests per minute (bridge.http.limits, docs/operations.md).
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)

    def __post_init__(self) -> None:
        if self.passthrough is None:
            self.passthrough = not self.api_keys

    def __repr__(self) -> str:
        return (
            f"Settings(dify_api_url={self.dify_api_url!r}, host={self.host!r}, port={self.port}, "
            f"models={[m.id for m in self.models]}, api_keys=<{len(self.api_keys)} redacted>)"
        )

    @property
    def demo_mode(self) -> bool:
        """No Dify configured: the bridge serves the built-in emulator itself."""
        return self.dify_api_url is None


# Environment variable → settings field. Lists are comma separated; aliases `a:b,c:d`.
ENV_FIELDS: dict[str, str] = {
    "DIFY_API_URL": "dify_api_url",
    "DIFY_PUBLIC_URL": "dify_public_url",
    "DIFY_API_KEY": "dify_api_key",
    "BRIDGE_HOST": "host",
    "BRIDGE_PORT": "port",
    "BRIDGE_API_KEYS": "api_keys",
    "BRIDGE_METRICS_KEY": "metrics_key",
    "BRIDGE_PASSTHROUGH": "passthrough",
    "BRIDGE_MODEL_NAME": "model_name",
    "BRIDGE_UPSTREAMS": "upstreams",
    "BRIDGE_BALANCE": "balance",
    "BRIDGE_DEFAULT_MODEL": "default_model",
    "BRIDGE_MODEL_ALIASES": "aliases",
    "BRIDGE_CONNECT_TIMEOUT": "connect_timeout",
    "BRIDGE_READ_TIMEOUT": "read_timeout",
    "BRIDGE_FIRST_EVENT_TIMEOUT": "first_event_timeout",
    "BRIDGE_UPSTREAM_CONNECTIONS": "upstream_connections",
    "BRIDGE_CONTROL_CONNECTIONS": "control_connections",
    "BRIDGE_CONVERSATION_CHECK_TIMEOUT": "conversation_check_timeout",
    "BRIDGE_CONVERSATION_KEY_HEADER": "conversation_key_header",
    "BRIDGE_TASK_HEADER": "task_header",
    "BRIDGE_KEEPALIVE_INTERVAL": "keepalive_interval",
    "BRIDGE_NONSTREAM_KEEPALIVE": "nonstream_keepalive",
    "BRIDGE_PARAMETERS_CACHE_TTL": "parameters_cache_ttl",
    "BRIDGE_STORE": "store",
    "BRIDGE_STORE_TTL": "store_ttl",
    "BRIDGE_STORE_MAX_ENTRIES": "store_max_entries",
    "BRIDGE_MAX_BODY_BYTES": "max_body_bytes",
    "BRIDGE_REQUEST_TIMEOUT": "request_timeout",
    "BRIDGE_MAX_HEADER_BYTES": "max_header_bytes",
    "BRIDGE_MAX_CONNECTIONS": "max_connections",
    "BRIDGE_EMULATOR_DSL_DIR": "emulator_dsl_dir",
    "BRIDGE_CORS_ORIGINS": "cors_origins",
    "BRIDGE_SHUTDOWN_GRACE": "shutdown_grace",
    "BRIDGE_READY_CACHE_TTL": "ready_cache_ttl",
    "LOG_LEVEL": "log_level",
    "LOG_FORMAT": "log_format",
}

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, env: Mapping[str, str], where: str) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string of the YAML file."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{where}: environment variable {name} is not set")

        return _ENV_REF.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _env_value(field_name: str, raw: str) -> Any:
    if field_name in ("api_keys", "cors_origins"):
        return [item.strip() for item in raw.split(",") if item.strip()]
    if field_name == "upstreams":
        return parse_upstreams_env(raw)
    if field_name == "aliases":
        pairs = [item.strip() for item in raw.split(",") if item.strip()]
        aliases = {}
        for pair in pairs:
            alias, sep, target = pair.partition(":")
            if not sep or not alias.strip() or not target.strip():
                raise ConfigError(f"BRIDGE_MODEL_ALIASES: expected 'alias:model', got {pair!r}")
            aliases[alias.strip()] = target.strip()
        return aliases
    if field_name in ("passthrough", "nonstream_keepalive"):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        var = next(k for k, v in ENV_FIELDS.items() if v == field_name)
        raise ConfigError(f"{var}: expected true or false, got {raw!r}")
    return raw.strip() or None


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build `Settings` from the YAML file, the environment and explicit overrides."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    path = config_path or env.get("BRIDGE_CONFIG")
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: invalid YAML ({exc})") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
        raw.update(_interpolate(loaded, env, "config"))
    for var, field_name in ENV_FIELDS.items():
        if env.get(var, "").strip():
            raw[field_name] = _env_value(field_name, env[var])
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_describe(exc)}") from exc
    _check(settings)
    return settings


def _describe(exc: msgspec.ValidationError) -> str:
    # msgspec says "... - at `$.models[0].mode`"; show the path first, as the field name.
    text = str(exc)
    message, sep, where = text.rpartition(" - at ")
    if sep:
        field_path = where.strip("`").removeprefix("$.").removeprefix("$")
        return f"{field_path or '(top level)'}: {message}"
    return text


def _check(settings: Settings) -> None:
    if not 0 < settings.port < 65536:
        raise ConfigError(f"port: {settings.port} is not a TCP port")
    for name in (
        "connect_timeout",
        "read_timeout",
        "first_event_timeout",
        "conversation_check_timeout",
        "keepalive_interval",
        "request_timeout",
        "max_header_bytes",
    ):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name}: must be positive")
    for name in ("upstream_connections", "control_connections"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{name}: must be at least 1")
    if settings.max_connections is not None and settings.max_connections < 1:
        raise ConfigError("max_connections: must be at least 1")
    for name in ("shutdown_grace", "ready_cache_ttl"):
        if getattr(settings, name) < 0:
            raise ConfigError(f"{name}: must not be negative")
    for url_field in ("dify_api_url", "dify_public_url"):
        url = getattr(settings, url_field)
        if url is not None and not re.match(r"^https?://[^/\s]+", url):
            raise ConfigError(f"{url_field}: expected an http(s) URL, got {url!r}")
    seen: set[str] = set()
    for index, model in enumerate(settings.models):
        if not model.id.strip():
            raise ConfigError(f"models[{index}].id: must not be empty")
        if model.id in seen:
            raise ConfigError(f"models[{index}].id: duplicate model id {model.id!r}")
        seen.add(model.id)
        if model.dify_url is not None and not re.match(r"^https?://[^/\s]+", model.dify_url):
            raise ConfigError(f"models[{index}].dify_url: expected an http(s) URL")
        if model.mode == "workflow" and not model.query_input:
            raise ConfigError(f"models[{index}].query_input: must not be empty")
        check_upstreams(model, f"models[{index}]", settings.dify_api_url)
    if settings.upstreams:
        if settings.dify_api_key:
            raise ConfigError("BRIDGE_UPSTREAMS: use either DIFY_API_KEY or BRIDGE_UPSTREAMS")
        if settings.model_name not in seen:
            group = ModelConfig(
                id=settings.model_name, upstreams=settings.upstreams, balance=settings.balance
            )
            check_upstreams(group, "BRIDGE_UPSTREAMS", settings.dify_api_url)
            settings.models.insert(0, group)
            seen.add(group.id)
    known = seen | ({settings.model_name} if settings.dify_api_key else set())
    for alias, target in settings.aliases.items():
        if known and target not in known and not settings.passthrough:
            raise ConfigError(f"aliases.{alias}: unknown model {target!r}")
    if settings.default_model and known and settings.default_model not in known:
        raise ConfigError(f"default_model: unknown model {settings.default_model!r}")
