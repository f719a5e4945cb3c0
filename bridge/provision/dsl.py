"""What provisioning needs from a DSL file before Dify sees it: its text, a digest to notice
changes, and (when the YAML reads) the app's name and mode for the default model name.

Validation is Dify's job: a file that does not parse here is still sent, so the user gets
Dify's own verdict (`Invalid YAML format: …`, 06a-06g) rather than a second opinion.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml


class DslReadError(Exception):
    """The file cannot be read at all."""


@dataclass(frozen=True)
class DslFile:
    path: Path
    text: str
    digest: str  # sha256 of the bytes, recorded in the config to notice a changed DSL
    app_name: str | None
    app_mode: str | None


def read_dsl(path: str | Path) -> DslFile:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DslReadError(f"cannot read DSL file {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DslReadError(f"DSL file {path} is not UTF-8 text") from exc
    name = mode = None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("app"), dict):
        app = doc["app"]
        name = str(app["name"]) if app.get("name") else None
        mode = str(app["mode"]) if app.get("mode") else None
    return DslFile(
        path=path,
        text=text,
        digest=hashlib.sha256(raw).hexdigest(),
        app_name=name,
        app_mode=mode,
    )
