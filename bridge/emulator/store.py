"""In-memory emulator state: conversations, messages, uploaded files, running tasks, journal."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .tool_files import ToolFile

UUID_NIL = "00000000-0000-0000-0000-000000000000"


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> int:
    return int(time.time())


@dataclass
class Message:
    id: str
    conversation_id: str
    inputs: dict[str, Any]
    query: str
    answer: str = ""
    created_at: int = field(default_factory=now)
    agent_thoughts: list[dict[str, Any]] = field(default_factory=list)
    message_files: list[dict[str, Any]] = field(default_factory=list)
    status: str = "normal"
    error: str | None = None

    def to_api(self) -> dict[str, Any]:
        """One item of `GET /v1/messages` (18a), keys in Dify's order."""
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            # The Service API never threads messages (45d).
            "parent_message_id": UUID_NIL,
            "inputs": self.inputs,
            "query": self.query,
            "answer": self.answer,
            "feedback": None,
            "retriever_resources": [],
            "created_at": self.created_at,
            "agent_thoughts": self.agent_thoughts,
            "message_files": self.message_files,
            "status": self.status,
            "error": self.error,
            "extra_contents": [],
        }


@dataclass
class Conversation:
    id: str
    app_key: str
    user: str
    inputs: dict[str, Any]
    name: str
    created_at: int = field(default_factory=now)
    updated_at: int = field(default_factory=now)
    messages: list[Message] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "inputs": self.inputs,
            "status": "normal",
            "introduction": "",
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class UploadedFile:
    id: str
    name: str
    size: int
    extension: str
    mime_type: str
    user: str
    created_at: int
    content: bytes

    def to_api(self, base_url: str) -> dict[str, Any]:
        """The 201 body of `/v1/files/upload` (19a)."""
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "extension": self.extension,
            "mime_type": self.mime_type,
            "created_by": self.user,
            "created_at": self.created_at,
            "preview_url": None,
            "source_url": f"{base_url}/files/{self.id}/file-preview",
            "original_url": None,
            "user_id": None,
            "tenant_id": UUID_NIL,
            "conversation_id": None,
            "file_key": None,
        }


JOURNAL_SIZE = 10_000


@dataclass
class EmulatorStore:
    conversations: dict[str, Conversation] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    # Files runs produced (HTTP Request responses, 46a), served at /files/tools/<id><ext>.
    tool_files: dict[str, ToolFile] = field(default_factory=dict)
    # task_id → set when a stop call for it arrives (the run watches it).
    stop_events: dict[str, asyncio.Event] = field(default_factory=dict)
    # Bounded: a long-running demo bridge must not grow without end.
    journal: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=JOURNAL_SIZE))

    def find_conversation(
        self, app_key: str, user: str, conversation_id: str
    ) -> Conversation | None:
        """Another user's or another app's conversation does not exist for this caller (13c)."""
        conv = self.conversations.get(conversation_id)
        if conv is None or conv.app_key != app_key or conv.user != user:
            return None
        return conv

    def conversations_of(self, app_key: str, user: str) -> list[Conversation]:
        found = [c for c in self.conversations.values() if c.app_key == app_key and c.user == user]
        return sorted(found, key=lambda c: c.updated_at, reverse=True)

    def keep_tool_file(self, tool_file: ToolFile) -> None:
        self.tool_files[tool_file.id] = tool_file

    def register_task(self, task_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self.stop_events[task_id] = event
        return event

    def finish_task(self, task_id: str) -> None:
        self.stop_events.pop(task_id, None)

    def stop_task(self, task_id: str) -> None:
        event = self.stop_events.get(task_id)
        if event is not None:
            event.set()
