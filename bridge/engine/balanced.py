"""A request to a model with several upstreams: choose one, keep a conversation where it
lives, and move to another upstream only while the run provably has not started.

The single-upstream path never comes here (`ChatService.prepare` checks `config.upstreams`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from bridge.conversations.keeper import pinned_conversation
from bridge.dify.client import DifyAPIError, DifyTimeout, DifyUnreachable
from bridge.errors import BridgeError
from bridge.openai.types import ChatCompletionRequest
from bridge.routing import ModelRoute
from bridge.translate.request import dify_user
from bridge.upstreams import Upstream, UpstreamGroup, failover_cause, upstream_unavailable
from bridge.upstreams import metrics as m
from bridge.upstreams.ownership import find_owner

if TYPE_CHECKING:
    from bridge.engine.run import DifyRun
    from bridge.engine.service import ChatService
    from bridge.engine.turn import PreparedTurn

log = structlog.get_logger("bridge.engine")


@dataclass(slots=True)
class Balanced:
    """The upstream side of one request: where it runs and where it was tried."""

    group: UpstreamGroup
    upstream: Upstream
    args: dict[str, Any]
    credential: str | None
    owned: bool = False  # continues a conversation that lives there: never moved
    attempts: list[str] = field(default_factory=list)
    tried: set[str] = field(default_factory=set)
    sent_at: float = 0.0


async def prepare_balanced(
    service: ChatService,
    group: UpstreamGroup,
    request: ChatCompletionRequest,
    route: ModelRoute,
    credential: str | None,
    **args: Any,
) -> PreparedTurn:
    await group.refresh()
    user = dify_user(request.user, credential)
    owner: Upstream | None = None
    owned = False
    pinned = pinned_conversation(args.get("pinned"), None)
    owner_down = False
    if pinned:
        owner, owner_down = await _pinned_owner(service, group, pinned, user)
    elif not service.keeper.is_background_task(request, args.get("task_header")):
        owner = await find_owner(
            service.keeper.store, group, request, user=user, client_chat_key=args.get("chat_key")
        )
    tried: set[str] = set()
    if owner is not None:
        if group.usable(owner) and not owner_down:
            owned = True
        elif group.config.on_owner_down == "fork":
            log.warning("conversation_forked", model=group.model, owner=owner.name)
            args = {**args, "pinned": None}
            tried.add(owner.uid)
            owner = None
        else:
            raise upstream_unavailable(
                group, f"the conversation lives on upstream {owner.name!r}, which is down"
            )
    while True:
        upstream = owner if owned else group.pick(frozenset(tried))
        if upstream is None:
            raise upstream_unavailable(group, "every upstream is down or was tried")
        tried.add(upstream.uid)
        try:
            # The mode comes from `/info` (cached): an upstream that cannot answer it has
            # certainly not started a run, so the next one is tried.
            await service.modes.mode(upstream.target, route.config.mode)
        except (DifyAPIError, DifyUnreachable, DifyTimeout) as exc:
            cause = failover_cause(exc)
            if cause is None or owned or len(tried) >= group.max_attempts:
                with _as_bridge_error(route):
                    raise
            await group.failed(upstream, cause)
            m.UPSTREAM_FAILOVERS.labels(group.model, upstream.name, cause).inc()
            continue
        state = Balanced(group, upstream, args, credential, owned=owned, tried=tried)
        return await _prepare_on(service, request, route, state)


async def _prepare_on(
    service: ChatService,
    request: ChatCompletionRequest,
    route: ModelRoute,
    state: Balanced,
) -> PreparedTurn:
    on = msgspec.structs.replace(route, target=state.upstream.target)
    turn = await service.prepare_one(request, on, state.credential, **state.args)
    return msgspec.structs.replace(turn, upstream=state)


async def _pinned_owner(
    service: ChatService, group: UpstreamGroup, conversation_id: str, user: str
) -> tuple[Upstream | None, bool]:
    """A conversation id the client names (`X-Dify-Conversation-Id`, the Responses API's
    `previous_response_id`): the upstream that knows it, and whether it is down. One that is
    down may be the owner, so it is reported as the owner (503, or a fork) when no other
    upstream knows the conversation."""
    down: Upstream | None = None
    for upstream in group.members:
        if not group.usable(upstream):
            down = down or upstream
            continue
        try:
            await service.dify.request_json(
                upstream.target,
                "GET",
                "messages",
                params={"conversation_id": conversation_id, "user": user, "limit": 1},
            )
        except (DifyAPIError, DifyUnreachable, DifyTimeout) as exc:
            cause = failover_cause(exc)
            if cause is not None and not (isinstance(exc, DifyAPIError) and exc.status == 404):
                await group.failed(upstream, cause)
                down = down or upstream
            continue
        return upstream, False
    return down, down is not None


async def start_balanced(service: ChatService, turn: PreparedTurn) -> DifyRun:
    state: Balanced = turn.upstream
    group = state.group
    loop = asyncio.get_running_loop()
    deadline = loop.time() + service.settings.first_event_timeout
    while True:
        upstream = state.upstream
        state.sent_at = time.perf_counter()
        try:
            run = await service.start_one(turn)
        except BridgeError as exc:
            cause: str | None = getattr(exc, "upstream_cause", None)
            if cause is None:
                raise
            m.UPSTREAM_REQUESTS.labels(group.model, upstream.name, "failed").inc()
            state.attempts.append(f"{upstream.name}:{cause}")
            await group.failed(upstream, cause)
            following = None
            if state.owned:
                # The conversation's own upstream is down: its policy, as in prepare.
                if group.config.on_owner_down != "fork":
                    structlog.contextvars.bind_contextvars(upstream_attempts=state.attempts)
                    raise upstream_unavailable(
                        group, f"the conversation lives on upstream {upstream.name!r} ({cause})"
                    ) from None
                log.warning("conversation_forked", model=group.model, owner=upstream.name)
                state.owned = False
                state.args = {**state.args, "pinned": None}
            movable = not state.owned and len(state.tried) < group.max_attempts
            if movable and loop.time() < deadline:
                following = group.pick(frozenset(state.tried))
            if following is None:
                structlog.contextvars.bind_contextvars(upstream_attempts=state.attempts)
                raise
            m.UPSTREAM_FAILOVERS.labels(group.model, upstream.name, cause).inc()
            log.info("upstream_failover", model=group.model, upstream=upstream.name, cause=cause)
            state.upstream = following
            state.tried.add(following.uid)
            turn = await _prepare_on(service, turn.request, turn.route, state)
            continue
        m.UPSTREAM_REQUESTS.labels(group.model, upstream.name, "started").inc()
        state.attempts.append(f"{upstream.name}:ok")
        structlog.contextvars.bind_contextvars(
            upstream=upstream.name, upstream_attempts=state.attempts
        )
        await group.succeeded(upstream)
        service.spawn(_time_first_event(run, upstream, state.sent_at, service))
        return run


async def _time_first_event(
    run: DifyRun, upstream: Upstream, sent_at: float, service: ChatService
) -> None:
    await run.wait_started(service.settings.first_event_timeout)
    if run.started and run.task_id is not None:
        upstream.first_event(time.perf_counter() - sent_at)


class _as_bridge_error:
    """`dify_errors` for a raw Dify exception re-raised here."""

    def __init__(self, route: ModelRoute) -> None:
        self.route = route

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        from bridge.translate.errors import from_dify_error, from_transport_error

        if isinstance(exc, DifyAPIError):
            raise from_dify_error(exc, managed=self.route.managed) from None
        if isinstance(exc, DifyUnreachable | DifyTimeout):
            raise from_transport_error(exc) from None
        return False
