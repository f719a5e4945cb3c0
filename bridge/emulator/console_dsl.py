"""The DSL side of a console import: the YAML, its version against the DSL version this Dify
writes (newer or of another major: pending until confirmed; an older minor: completed with
warnings), its `app` section, and the import bodies Dify answers with (recordings 06a-06h).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .console_records import ConsoleReply

CURRENT_DSL_VERSION = "0.6.0"
APP_MODES = frozenset({"advanced-chat", "workflow", "chat", "agent-chat", "completion"})
# The PEP 440 shapes a DSL version takes (Dify parses it with packaging.version).
_VERSION = re.compile(
    r"^v?(\d+(?:\.\d+)*)(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?\d*)?"
    r"(?:[-_.]?(?:post|rev|r)[-_.]?\d*)?(?:[-_.]?dev[-_.]?\d*)?(?:\+[a-z0-9.]+)?$",
    re.IGNORECASE,
)


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = _VERSION.match(text.strip())
    if not match:
        return None
    parts = [int(p) for p in match.group(1).split(".")] + [0, 0]
    return parts[0], parts[1], parts[2]


def import_body(
    import_id: str,
    status: str,
    app_id: str | None = None,
    app_mode: str | None = None,
    version: str = "",
    error: str = "",
) -> dict[str, Any]:
    return {
        "id": import_id,
        "status": status,
        "app_id": app_id,
        "app_mode": app_mode,
        "current_dsl_version": CURRENT_DSL_VERSION,
        "imported_dsl_version": version,
        "error": error,
    }


def failed(import_id: str, error: str) -> ConsoleReply:
    return ConsoleReply(400, import_body(import_id, "failed", error=error))


def read_dsl(import_id: str, text: str) -> tuple[str, str, dict[str, Any]]:
    """The DSL's version, the import status it earns (`completed`, `completed-with-warnings`, or
    `pending` until confirmed) and its `app` section; a failed import otherwise."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise failed(import_id, f"Invalid YAML format: {exc}") from None  # 06a
    if not isinstance(doc, dict):
        raise failed(import_id, "Invalid YAML format: content must be a mapping")  # 06b
    version = doc.get("version", "0.1.0")
    if not isinstance(version, str):
        raise failed(import_id, f"Invalid version type, expected str, got {type(version)}")
    parsed = parse_version(version)
    if parsed is None:
        raise failed(import_id, f"Invalid version: '{version}'")  # 06f
    app_data = doc.get("app")
    if not app_data or not isinstance(app_data, dict):
        raise failed(import_id, "Missing app data in YAML content")  # 06g
    current = parse_version(CURRENT_DSL_VERSION)
    assert current is not None
    status = "completed"
    if parsed > current or parsed[0] < current[0]:
        status = "pending"
    elif parsed[1] < current[1]:
        status = "completed-with-warnings"
    return version, status, app_data
