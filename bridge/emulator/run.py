"""What one generation request carries through a pipeline, and how it is stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from .dsl import AppSpec
from .llm import FakeModelTiming
from .store import Conversation, EmulatorStore
from .versions import DEFAULT_PROFILE, DifyProfile, MessageFileText

T = TypeVar("T")
Emit = Callable[[msgspec.Struct], None]


class Stopped(Exception):
    """A stop call for this task arrived."""


@dataclass
class RunSettings:
    code_timeout: float = 30.0
    model: FakeModelTiming = field(default_factory=FakeModelTiming)
    http_timeout: float = 30.0
    # agent workflow tools (46d): tool name → the workflow app that runs it
    workflow_tools: dict[str, AppSpec] = field(default_factory=dict)
    # the Dify release being played (versions.py)
    profile: DifyProfile = DEFAULT_PROFILE


@dataclass
class RunContext:
    app: AppSpec
    store: EmulatorStore
    settings: RunSettings
    user: str
    end_user_id: str
    task_id: str
    message_id: str
    created_at: int
    inputs: dict[str, Any]
    query: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)
    conversation: Conversation | None = None
    # Where the emulator is reached: tool-file URLs point here (46a).
    base_url: str = "http://127.0.0.1"
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # Filled by the pipeline, read by the blocking response builders.
    answer: str = ""
    status: str = "succeeded"
    error: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    workflow_run_id: str = ""
    elapsed: float = 0.0
    total_tokens: int = 0
    total_steps: int = 0
    finished_at: int = 0
    error_code: str | None = None
    # 44c: after a blocked chatflow input the stream stays open, silent, until the idle timeout.
    hold_open: bool = False

    @property
    def conversation_id(self) -> str:
        return self.conversation.id if self.conversation else ""

    @property
    def text_event(self) -> str:
        """Event name of a chat/completion app's answer chunks: `message_file` on Dify
        1.11.2–1.12.x once the message has any file, the user's own included (dify#31888)."""
        profile = self.settings.profile
        if (
            profile.message_file_text is MessageFileText.ANY_FILE
            and self.files
            and self.app.mode in ("chat", "completion")
        ):
            return "message_file"
        return "message"

    async def guard(self, work: Awaitable[T]) -> T:
        """Await `work` unless a stop call arrives first; then cancel it and raise Stopped."""
        if self.stop.is_set():
            if asyncio.iscoroutine(work):
                work.close()
            raise Stopped
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(self.stop.wait())
        try:
            done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            stopper.cancel()
            raise
        stopper.cancel()
        if task in done:
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise Stopped
