"""structlog set-up: JSON lines when not on a TTY, readable colour output on one; no secrets."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

# Anything shaped like a Dify app key, an `sk-` key or a bearer credential is masked in every
# log field; the keys the configuration names are masked verbatim whatever their shape.
_SECRET = re.compile(r"(app-[A-Za-z0-9]{4})[A-Za-z0-9_-]+|(sk-)[A-Za-z0-9_-]{6,}|(Bearer\s+)\S+")
_known_secrets: list[str] = []


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _known_secrets:
            if secret in value:
                value = value.replace(secret, "<redacted>")
        return _SECRET.sub(lambda m: (m.group(1) or m.group(2) or m.group(3)) + "…", value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


def redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {key: _mask(value) for key, value in event_dict.items()}


# Client-chosen values are logged bounded: a 1 MB `model` once made a 1 MB access line. The
# model id as the bridge accepts it (bridge.routing.MAX_MODEL_LENGTH), anything else at a size
# no real value reaches; tracebacks are whole.
MAX_MODEL_CHARS = 256
MAX_FIELD_CHARS = 4096
_WHOLE = frozenset({"exception", "event"})


def _bounded(value: str, limit: int) -> str:
    return f"{value[:limit]}…(+{len(value) - limit} chars)"


def bound_fields(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in event_dict.items():
        if not isinstance(value, str) or key in _WHOLE:
            continue
        limit = MAX_MODEL_CHARS if key == "model" else MAX_FIELD_CHARS
        if len(value) > limit:
            event_dict[key] = _bounded(value, limit)
    return event_dict


class StructlogHandler(logging.Handler):
    """Sends stdlib log records (uvicorn's own lines: "Invalid HTTP request received.",
    start-up failures, tracebacks) through structlog, so the log stays one JSON object per
    line, masked like every other line (`uvicorn_log_config`)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if not structlog.is_configured():
                configure_logging()  # a supervisor process that never built the app
            extra: dict[str, Any] = {"logger": record.name}
            if record.exc_info:
                extra["exc_info"] = record.exc_info
            structlog.get_logger(record.name).log(record.levelno, record.getMessage(), **extra)
        except Exception:
            self.handleError(record)


UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's `log_config`: its loggers write through `StructlogHandler` instead of their
    plain-text handlers (uvicorn applies it in every worker process too)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"bridge": {"()": "bridge.logging.StructlogHandler"}},
        "loggers": {
            name: {"handlers": ["bridge"], "level": "INFO", "propagate": False}
            for name in UVICORN_LOGGERS
        },
    }


def configure_logging(
    level: str = "info", fmt: str = "auto", *, secrets: list[str] | None = None
) -> None:
    """`secrets`: exact strings (bridge keys, Dify keys) never to appear in a log line."""
    if secrets is not None:
        # Longest first, so a key that contains another one is masked whole.
        _known_secrets[:] = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    # httpx logs every request line at INFO in its own format; the access log covers it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # `log.exception(...)`: the traceback as text, masked like everything else.
            structlog.processors.format_exc_info,
            redact_secrets,
            # After the masking: a cut must never leave half a key unmasked.
            bound_fields,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
