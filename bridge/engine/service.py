"""Serving logic: one OpenAI chat request → one (or, on recovery, two) Dify streaming runs.

Routes stay thin: they decode, call `ChatService`, and frame what it yields. The service owns
mode discovery, the first-event deadline, keepalive ticks, and stopping Dify when the
client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog

from bridge.conversations import ConversationStore
from bridge.conversations.keeper import ConversationKeeper, pinned_conversation
from bridge.dify.client import (
    DifyAPIError,
    DifyBadStream,
    DifyClient,
    DifyStream,
    DifyTarget,
    DifyTimeout,
    DifyUnreachable,
)
from bridge.engine.balanced import prepare_balanced, start_balanced
from bridge.engine.modes import (
    DEFAULT_REASONING_MODES,
    FLOW_MODES,
    WRONG_MODE_FALLBACK,
    AppModeCache,
)
from bridge.engine.run import DifyRun, transport_failure
from bridge.engine.turn import NO_CALL, PreparedTurn, with_call
from bridge.errors import BridgeError
from bridge.inputs import InputMapper
from bridge.openai.types import ChatCompletionRequest
from bridge.routing import ModelRoute
from bridge.settings import Settings
from bridge.translate.errors import dify_errors, from_dify_error, from_transport_error
from bridge.translate.request import (
    CHAT_MODES,
    dify_user,
    validate_request,
)
from bridge.upstreams import UpstreamPool, failover_cause

log = structlog.get_logger("bridge.engine")

class ChatService:
    def __init__(
        self, settings: Settings, dify: DifyClient, store: ConversationStore | None = None
    ) -> None:
        self.settings = settings
        self.dify = dify
        self.keeper = ConversationKeeper(settings, store)
        self.modes = AppModeCache(dify, settings.info_cache_ttl)
        self.inputs = InputMapper(settings, dify)
        self._background: set[asyncio.Task[None]] = set()
        self.cleanup_slots = asyncio.Semaphore(settings.control_connections)
        # Models with several upstreams (docs/upstreams.md); the others never touch it.
        self.upstreams = UpstreamPool(settings, dify)

    async def moderates_output(self, target: DifyTarget) -> bool | None:
        """Whether the app checks its answers (None: unknown, e.g. an old Dify)."""
        parameters = await self.inputs.parameters.get(target)
        return parameters.moderates_output if parameters else None

    def reasoning_enabled(self, route: ModelRoute, mode: str) -> bool:
        configured = route.config.reasoning
        if configured is None:
            return mode in DEFAULT_REASONING_MODES
        return configured != "off"

    def reasoning_format(self, route: ModelRoute) -> str:
        return "think" if route.config.reasoning == "think" else "reasoning_content"

    async def prepare(
        self,
        request: ChatCompletionRequest,
        route: ModelRoute,
        credential: str | None,
        *,
        pinned: str | None = None,
        chat_key: str | None = None,
        task_header: str | None = None,
    ) -> PreparedTurn:
        if route.config.upstreams and route.managed:
            group = self.upstreams.group(route.config)
            if group is not None:
                validate_request(request)
                return await prepare_balanced(
                    self,
                    group,
                    request,
                    route,
                    credential,
                    pinned=pinned,
                    chat_key=chat_key,
                    task_header=task_header,
                )
        return await self.prepare_one(
            request, route, credential, pinned=pinned, chat_key=chat_key, task_header=task_header
        )

    async def prepare_one(
        self,
        request: ChatCompletionRequest,
        route: ModelRoute,
        credential: str | None,
        *,
        pinned: str | None = None,
        chat_key: str | None = None,
        task_header: str | None = None,
    ) -> PreparedTurn:
        validate_request(request)
        mode = await self._mode(route)
        user = dify_user(request.user, credential)
        pinned_id = pinned_conversation(pinned, None)
        if pinned_id and mode in CHAT_MODES:
            await self._check_conversation(route, pinned_id, user)
        background = self.keeper.is_background_task(request, task_header)
        mapped = await self.inputs.map(request, route, mode, user)
        context = await self.keeper.plan(
            request,
            config=route.config,
            target=route.target,
            mode=mode,
            user=user,
            pinned=pinned_id,
            client_chat_key=chat_key,
            background=background,
            # System text that no app variable took is carried in the query (never dropped).
            system_in_query=mapped.system_prompt is not None,
        )
        turn = PreparedTurn(
            route=route,
            request=request,
            mode=mode,
            call=NO_CALL,
            user=user,
            inputs=mapped.inputs,
            files=mapped.files,
            context=context,
            reasoning=self.reasoning_enabled(route, mode),
        )
        return with_call(turn, mode)

    def replan_as_new(self, turn: PreparedTurn) -> PreparedTurn:
        turn = msgspec.structs.replace(turn, context=self.keeper.replan_as_new(turn.context))
        return with_call(turn, turn.mode)

    async def _check_conversation(self, route: ModelRoute, conversation_id: str, user: str) -> None:
        """A client-pinned id is checked cheaply first: streaming into an unknown conversation
        makes Dify hang silently (rec. 13a), and another user's conversation is a 404 (13c)."""
        with dify_errors(managed=route.managed):
            await self.dify.request_json(
                route.target,
                "GET",
                "messages",
                params={"conversation_id": conversation_id, "user": user, "limit": 1},
            )

    async def _mode(self, route: ModelRoute) -> str:
        with dify_errors(managed=route.managed):
            return await self.modes.mode(route.target, route.config.mode)

    async def start(self, turn: PreparedTurn) -> DifyRun:
        """Open the Dify stream. HTTP errors from Dify surface here, before any byte is sent
        to the client, so they keep their status code."""
        if turn.upstream is not None:
            return await start_balanced(self, turn)
        return await self.start_one(turn)

    async def start_one(self, turn: PreparedTurn) -> DifyRun:
        try:
            stream, stack, turn = await self.open_stream(turn)
        except BridgeError as exc:
            if exc.code != "conversation_not_found" or not turn.continues_stored_conversation:
                raise
            # Dify forgot a conversation the store still maps (expired, deleted): drop the
            # mapping and start a new conversation carrying the history.
            log.warning("dify_conversation_lost", conversation_id=turn.call.conversation_id)
            if turn.call.conversation_id:
                await self.keeper.forget(turn.call.conversation_id)
            stream, stack, turn = await self.open_stream(self.replan_as_new(turn))
        run = DifyRun(self, turn, stream, stack)
        if turn.continues_stored_conversation and turn.mode in FLOW_MODES:
            # A chatflow pings and hangs on a conversation it no longer has (rec. 13a). Check
            # before the route answers: its `X-Dify-Conversation-Id` header must name the
            # conversation the answer really comes from, and a stream's headers go out first.
            # The reader's own short deadline detects the lost conversation and reruns the
            # turn as new (DifyRun._recover); one mechanism, so the turn never runs twice.
            await run.wait_started(
                self.settings.conversation_check_timeout + self.settings.first_event_timeout
            )
        return run

    async def open_stream(
        self, turn: PreparedTurn
    ) -> tuple[DifyStream, contextlib.AsyncExitStack, PreparedTurn]:
        for _attempt in range(3):
            stack = contextlib.AsyncExitStack()
            if turn.upstream is not None:
                # In flight (least_busy) until the run's upstream is released.
                turn.upstream.upstream.enter()
                stack.callback(turn.upstream.upstream.leave)
            try:
                stream = await stack.enter_async_context(
                    self.dify.stream(turn.route.target, turn.call.path, turn.call.payload)
                )
            except DifyAPIError as exc:
                await stack.aclose()
                self.inputs.note_dify_error(turn.route.target, turn.user, exc)
                fallback = WRONG_MODE_FALLBACK.get(exc.code or "")
                if fallback and turn.route.config.mode == "auto" and fallback != turn.mode:
                    log.info("dify_mode_corrected", model=turn.route.model, mode=fallback)
                    self.modes.remember(turn.route.target, fallback)
                    turn = with_call(turn, fallback)
                    continue
                raise _tagged(from_dify_error(exc, managed=turn.route.managed), turn, exc) from None
            except (DifyUnreachable, DifyTimeout) as exc:
                await stack.aclose()
                raise _tagged(from_transport_error(exc), turn, exc) from None
            except DifyBadStream as exc:
                await stack.aclose()
                raise transport_failure(exc) from None
            return stream, stack, turn
        raise BridgeError(
            400,
            "Could not find the Dify endpoint for this app's mode.",
            code="dify_mode_unknown",
            retryable=False,
        )

    async def stop_task(self, turn: PreparedTurn, task_id: str, *, reason: str) -> None:
        stop_path = turn.call.stop_path.format(task_id=task_id)
        try:
            await self.dify.stop(turn.route.target, stop_path, turn.user)
            log.info("dify_task_stopped", task_id=task_id, model=turn.route.model, reason=reason)
        except Exception as exc:  # best effort: nobody reads the run either way
            log.warning(
                "dify_stop_failed", task_id=task_id, reason=reason, error=type(exc).__name__
            )

    def spawn(self, coro: Any) -> None:
        """Run cleanup that must outlive a cancelled request (e.g. stopping Dify)."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _tagged(error: BridgeError, turn: PreparedTurn, exc: Exception) -> BridgeError:
    """Mark an error that left the run unstarted, so another upstream may be tried."""
    if turn.upstream is not None:
        error.upstream_cause = failover_cause(exc)  # type: ignore[attr-defined]
    return error


