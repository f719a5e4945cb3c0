"""Which kind of Dify app a key serves: learned from `GET /info` (cached), from a probe that
runs nothing (Dify < 1.4 has no `mode` in `/info`), or from Dify's wrong-mode error codes.
"""

from __future__ import annotations

import time

import structlog

from bridge.dify.client import (
    DifyAPIError,
    DifyClient,
    DifyTarget,
)

# Chatflow/workflow streams send `workflow_started` at once when healthy; these modes can also
# hang silently after one ping (unknown conversation, rec. 13a), so they get a deadline.
FLOW_MODES = frozenset({"advanced-chat", "workflow"})
WRONG_MODE_FALLBACK = {
    "not_chat_app": "workflow",  # chat-messages on a workflow (or completion) app, rec. 08a
    "not_workflow_app": "advanced-chat",  # workflows/run on a chat-type app, rec. 08b
    "app_unavailable": "chat",  # completion-messages on a chat app, rec. 08c / 32e
}
log = structlog.get_logger("bridge.engine")

# The probe's end user (Dify creates an end-user row for it; nothing else happens).
PROBE_USER = "dify-bridge-mode-probe"
DEFAULT_REASONING_MODES = frozenset({"advanced-chat", "workflow", "agent-chat", "agent"})


class AppModeCache:
    """App mode per Dify key, learned from `GET /info` (cached) or from wrong-mode errors."""

    def __init__(self, dify: DifyClient, ttl: float) -> None:
        self._dify = dify
        self._ttl = ttl
        self._modes: dict[str, tuple[str, float]] = {}

    async def mode(self, target: DifyTarget, configured: str) -> str:
        if configured != "auto":
            return configured
        key = target.identity
        cached = self._modes.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        try:
            info = await self._dify.info(target)
        except DifyAPIError as exc:
            if exc.status in (401, 403):
                raise
            info = None  # no /info at all: learn from wrong-mode errors instead
        if info and info.mode:
            mode = info.mode
        else:
            mode = await self.probe(target)
            log.info("dify_mode_probed", mode=mode, why="Dify < 1.4 has no mode in /info")
        self.remember(target, mode)
        return mode

    async def probe(self, target: DifyTarget) -> str:
        """The mode of an app whose `/info` does not say (Dify < 1.4.0), without a run.

        Every release checks the app's mode before it validates the body (dify-versions.md §4
        item 5), so a body with nothing but `user` is refused either for the wrong mode
        (`not_chat_app`, `not_workflow_app`) or, on the right endpoint, for the body. Chat,
        agent and chatflow apps cannot be told apart this way; they share the chat endpoint
        and the bridge reads all three streams the same way, so they count as a chatflow."""
        body = {"user": PROBE_USER}
        if await self._refused_as(target, "chat-messages", body) != "not_chat_app":
            return "advanced-chat"
        if await self._refused_as(target, "workflows/run", body) == "not_workflow_app":
            return "completion"
        return "workflow"

    async def _refused_as(self, target: DifyTarget, path: str, body: dict) -> str | None:
        try:
            await self._dify.request_json(target, "POST", path, json=body)
        except DifyAPIError as exc:
            if exc.status in (401, 403):
                raise
            return exc.code
        return None

    def remember(self, target: DifyTarget, mode: str) -> None:
        self._modes[target.identity] = (mode, time.monotonic() + self._ttl)
