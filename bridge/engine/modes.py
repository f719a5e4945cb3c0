"""Which kind of Dify app a key serves: learned from `GET /info` (cached) or from Dify's
wrong-mode error codes.
"""

from __future__ import annotations

import time

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
            info = None  # an old Dify without /info: learn from wrong-mode errors instead
        mode = info.mode if info and info.mode else "advanced-chat"
        self.remember(target, mode)
        return mode

    def remember(self, target: DifyTarget, mode: str) -> None:
        self._modes[target.identity] = (mode, time.monotonic() + self._ttl)


