"""The emulator's Service API side (`Emulator`: apps by key, auth, end users, run counts) and
the run set-up of a generation request once its checks passed (payload.py): the conversation,
the run context, the pipeline (moderation → graph or chat app) and the message it leaves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import errors
from .chat import run_chat_app
from .dsl import CHAT_MODES, AppSpec
from .graph import run_graph
from .moderation import answer_blocked_input, moderation_of
from .payload import GenerationRequest
from .run import Emit, RunContext, RunSettings
from .store import Conversation, EmulatorStore, Message, new_id, now
from .tool_files import files_in, message_file, strip_images
from .versions import DifyProfile


@dataclass
class Emulator:
    apps: dict[str, AppSpec]
    store: EmulatorStore
    settings: RunSettings
    ping_interval: float = 10.0
    idle_timeout: float = 300.0
    start_failure_hold: float = 300.0
    title_wait: float = 3.0  # ≤1.10: a new conversation's stream waits for its title
    end_users: dict[tuple[str, str], str] = field(default_factory=dict)
    # app key → workflow runs so far (`sequence_number` of ≤1.4.1 graph events)
    run_counts: dict[str, int] = field(default_factory=dict)

    @property
    def profile(self) -> DifyProfile:
        return self.settings.profile

    def next_run_number(self, app: AppSpec) -> int:
        self.run_counts[app.key] = self.run_counts.get(app.key, 0) + 1
        return self.run_counts[app.key]

    def authenticate(self, authorization: str | None) -> AppSpec:
        """The three 401 texts of recordings 10, 11a, 11b."""
        if not authorization or " " not in authorization:
            raise errors.unauthorized(
                "Authorization header must be provided and start with 'Bearer'"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise errors.unauthorized("Authorization scheme must be 'Bearer'")
        app = self.apps.get(token.strip())
        if app is None:
            raise errors.unauthorized("Access token is invalid")
        return app

    def end_user_id(self, app: AppSpec, user: str) -> str:
        return self.end_users.setdefault((app.key, user), new_id())


def new_context(
    emulator: Emulator,
    app: AppSpec,
    user: str,
    request: GenerationRequest,
    conversation: Conversation | None,
    files: list[dict[str, Any]],
) -> RunContext:
    task_id = new_id()
    ctx = RunContext(
        app=app,
        store=emulator.store,
        settings=emulator.settings,
        user=user,
        end_user_id=emulator.end_user_id(app, user),
        task_id=task_id,
        message_id=new_id(),
        created_at=now(),
        inputs=request.inputs,
        query=request.query,
        files=files,
        conversation=conversation,
    )
    ctx.stop = emulator.store.register_task(task_id)
    if conversation is not None and not conversation.messages:
        # stored as Dify stores them: the validated form, unsent optional inputs as null
        conversation.inputs = dict(request.inputs)
    return ctx


def conversation_name(query: str, streaming: bool) -> str:
    """Blocking first turns: the query's first 20 characters + "…" (measured, issue 14 item 9).
    Streamed ones get an LLM-written title on Dify; the emulator uses the query on one line,
    cut like Dify cuts a generated title (75 + "...") — see docs/emulator.md."""
    one_line = query.replace("\r", " ").replace("\n", " ")
    if not streaming:
        return one_line[:20] + "…" if len(one_line) > 20 else one_line
    return one_line[:75] + "..." if len(one_line) > 75 else one_line


def open_conversation(
    emulator: Emulator, app: AppSpec, user: str, request: GenerationRequest
) -> Conversation | None:
    if app.mode not in CHAT_MODES:
        return None
    if request.conversation_id:
        return emulator.store.find_conversation(app.key, user, request.conversation_id)
    conv = Conversation(
        id=new_id(),
        app_key=app.key,
        user=user,
        inputs=request.inputs,
        name=conversation_name(request.query, request.streaming),
    )
    emulator.store.conversations[conv.id] = conv
    return conv


async def run_pipeline(ctx: RunContext, emit: Emit) -> None:
    try:
        moderation = moderation_of(ctx.app)
        blocked = moderation.blocks_input(ctx.query, ctx.inputs) if moderation else None
        if blocked is not None:
            answer_blocked_input(ctx, emit, blocked)
        elif ctx.app.is_graph:
            await run_graph(ctx, emit)
        else:
            await run_chat_app(ctx, emit)
    finally:
        _remember(ctx)
        ctx.store.finish_task(ctx.task_id)


def _remember(ctx: RunContext) -> None:
    conv = ctx.conversation
    if conv is None:
        return
    failed = ctx.status in ("failed", "error")
    answer, message_files = ctx.answer, []
    if ctx.app.is_graph:
        # 46c: a chatflow message is saved without its markdown images; the files it showed
        # are listed instead. 27a/34e: a failed run saves no answer and "Run failed: …".
        answer = "" if failed else strip_images(answer)
        message_files = [message_file(f) for f in files_in(ctx.outputs)]
    elif ctx.app.mode == "agent-chat":
        message_files = list(ctx.outputs.get("message_files") or [])  # 46e
    error = None
    if failed:
        error = f"Run failed: {ctx.error}" if ctx.app.is_graph else ctx.error
    message = Message(
        id=ctx.message_id,
        conversation_id=conv.id,
        inputs=ctx.inputs,
        query=ctx.query,
        answer=answer,
        created_at=ctx.created_at,
        agent_thoughts=list(ctx.outputs.get("agent_thoughts") or [])
        if ctx.app.mode == "agent-chat"
        else [],
        message_files=message_files,
        status="error" if failed else "normal",
        error=error,
    )
    conv.messages.append(message)
    conv.updated_at = now()
