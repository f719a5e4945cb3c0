"""Dify 1.13.2 console API bodies the provisioner reads (recordings console/01a-10h).

Only the fields used are declared; msgspec ignores the rest, so a newer Dify that adds fields
still decodes.
"""

from __future__ import annotations

from typing import Literal

import msgspec

ImportStatus = Literal["completed", "completed-with-warnings", "pending", "failed"]


class SetupStatus(msgspec.Struct):
    step: str  # "finished" | "not_started" (01a)


class ImportResult(msgspec.Struct):
    """`POST /apps/imports` and `.../confirm`: the same object for every outcome (05a, 06a-06g)."""

    id: str
    status: ImportStatus
    app_id: str | None = None
    app_mode: str | None = None
    current_dsl_version: str = ""
    imported_dsl_version: str = ""
    error: str = ""


class PublishedWorkflow(msgspec.Struct):
    id: str


class AppDetail(msgspec.Struct):
    """`GET /apps/<id>` (07b); `workflow` stays null until the first publish."""

    id: str
    name: str
    mode: str
    workflow: PublishedWorkflow | None = None
    api_base_url: str | None = None


class ApiKey(msgspec.Struct):
    """One Service API key (08a, 08b); `token` is the `app-…` secret."""

    id: str
    token: str


class ApiKeyList(msgspec.Struct):
    data: list[ApiKey]


class ErrorBody(msgspec.Struct):
    """Every error shape the console uses, folded into one: flask-restx `{code,message,status}`,
    the key limit's `{custom,message}` (08c), `{message}` (08e, 09d) and `/setup`'s
    `{"error": {type,message,status}}` (02a, 02b)."""

    code: str | None = None
    custom: str | None = None
    message: str | None = None
    error: dict[str, object] | None = None

    @property
    def kind(self) -> str | None:
        if self.code or self.custom:
            return self.code or self.custom
        if self.error:
            return str(self.error.get("type") or "") or None
        return None

    @property
    def text(self) -> str:
        if self.message:
            return self.message
        if self.error:
            return str(self.error.get("message") or "")
        return ""
