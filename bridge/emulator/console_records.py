"""The emulated console's records (admin, Service API keys, apps, pending imports, token
grants) and its error answers (`ConsoleReply`: flask-restx and /setup shapes)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dsl import AppSpec


class ConsoleReply(Exception):
    """A console answer other than success. `newline`: flask-restx bodies end in a newline,
    the /setup router's and the login cookies responses do not (Content-Length in 01a, 03a)."""

    def __init__(
        self, status: int, body: dict[str, Any], *, newline: bool = True, challenge: bool = False
    ) -> None:
        super().__init__(body)
        self.status = status
        self.body = body
        self.newline = newline
        self.challenge = challenge  # 401s from login_required carry WWW-Authenticate


def restx_error(code: str, message: str, status: int) -> ConsoleReply:
    return ConsoleReply(
        status, {"code": code, "message": message, "status": status}, challenge=status == 401
    )


def setup_error(kind: str, message: str, status: int, **extra: Any) -> ConsoleReply:
    return ConsoleReply(
        status,
        {"error": {"type": kind, "message": message, "status": status, **extra}},
        newline=False,
    )


def now() -> int:
    return int(time.time())


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Admin:
    email: str
    name: str
    password: str
    id: str = field(default_factory=new_id)


@dataclass
class ServiceKey:
    token: str
    id: str = field(default_factory=new_id)
    created_at: int = field(default_factory=now)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "app",
            "token": self.token,
            "last_used_at": None,
            "created_at": self.created_at,
        }


@dataclass
class ConsoleApp:
    id: str
    name: str
    mode: str
    description: str = ""
    icon: str = "\U0001f916"
    icon_background: str = "#FFEAD5"
    draft: Path | None = None  # the imported DSL; None for the emulator's preloaded apps
    workflow_id: str | None = None  # the published workflow (graph apps)
    published_at: int | None = None
    served: AppSpec | None = None  # what the Service API runs
    keys: list[ServiceKey] = field(default_factory=list)
    created_at: int = field(default_factory=now)
    updated_at: int = field(default_factory=now)

    def summary(self, author: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "max_active_requests": None,
            "description": self.description,
            "mode": self.mode,
            "icon_type": "emoji",
            "icon": self.icon,
            "icon_background": self.icon_background,
            "model_config": None,
            "workflow": self._workflow(),
            "use_icon_as_answer_icon": False,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "tags": [],
            "access_mode": None,
            "author_name": author,
            "icon_url": None,
        }

    def detail(self, api_base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "mode": self.mode,
            "icon": self.icon,
            "icon_background": self.icon_background,
            "enable_site": True,
            "enable_api": True,
            "model_config": None,
            "workflow": self._workflow(),
            "tracing": None,
            "use_icon_as_answer_icon": False,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "access_mode": None,
            "tags": [],
            "icon_type": "emoji",
            "api_base_url": api_base_url,
            "max_active_requests": None,
            "deleted_tools": [],
            "icon_url": None,
        }

    def _workflow(self) -> dict[str, Any] | None:
        if self.workflow_id is None:
            return None
        return {
            "id": self.workflow_id,
            "created_at": self.published_at,
            "updated_by": None,
            "updated_at": self.published_at,
        }


@dataclass
class PendingImport:
    text: str
    app_id: str | None
    expires_at: float


@dataclass
class Grant:
    account_id: str
    expires_at: float
