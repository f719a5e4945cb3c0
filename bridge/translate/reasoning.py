"""Readable one-line descriptions of a Dify flow's progress, shown to clients as reasoning.

Each line is whole and ends with a newline: Cherry Studio trims every thinking fragment, so a
step must never be split across chunks (clients.md). Node types that say nothing to a user
(start, answer, end, the inner start of an iteration/loop) are left out, and so are the nodes
inside an iteration or loop, whose progress is shown per round instead (rec. 40/41).
"""

from __future__ import annotations

import json

from bridge.dify import events as ev

_QUIET_NODE_TYPES = frozenset({"start", "answer", "end", "iteration-start", "loop-start"})
_MAX_DETAIL = 160


def _short(text: str | None, limit: int = _MAX_DETAIL) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _seconds(elapsed: float | None) -> str:
    return f" ({elapsed:.1f}s)" if elapsed is not None else ""


def _tool_input(raw: str | None) -> str:
    """Agent tool input is a JSON string keyed by tool name; show just the arguments."""
    if not raw:
        return ""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return _short(raw)
    if isinstance(parsed, dict) and len(parsed) == 1:
        parsed = next(iter(parsed.values()))
    return _short(json.dumps(parsed, ensure_ascii=False) if not isinstance(parsed, str) else parsed)


class StepNarrator:
    def __init__(self) -> None:
        self._announced_tools: set[tuple[str, str]] = set()

    def describe(self, event: ev.StreamItem) -> str | None:
        match event:
            case ev.NodeStarted(data=d) if self._visible(d):
                return f"{d.title}…\n"
            case ev.NodeFinished(data=d) if self._visible(d) or d.status == "failed":
                if d.status == "failed":
                    return f"{d.title} failed: {_short(d.error)}\n"
                return f"{d.title} done{_seconds(d.elapsed_time)}\n"
            case ev.NodeRetry(data=d):
                return f"{d.title}: retrying after an error: {_short(d.error)}\n"
            case ev.IterationStarted(data=d):
                count = (d.metadata or {}).get("iteration_length")
                return f"{d.title}: {count} items…\n" if count is not None else f"{d.title}…\n"
            case ev.IterationNext(data=d):
                return f"{d.title}: item {(d.index or 0) + 1}\n"
            case ev.IterationCompleted(data=d) | ev.LoopCompleted(data=d):
                if d.status == "failed":
                    return f"{d.title} failed: {_short(d.error)}\n"
                return f"{d.title} done{_seconds(d.elapsed_time)}\n"
            case ev.LoopStarted(data=d):
                return f"{d.title}: round 1…\n"
            case ev.LoopNext(data=d):
                # loop_next comes only between rounds, with index 1 before the second (rec. 41).
                return f"{d.title}: round {(d.index or 0) + 1}…\n"
            case ev.AgentThought():
                return self._agent_thought(event)
            case ev.AgentLog(data=d) if d.label:
                status = f" ({d.status})" if d.status and d.status != "success" else ""
                return f"{_short(d.label)}{status}\n"
            case ev.ReasoningChunk(data=d) if d.reasoning:
                return d.reasoning
        return None

    @staticmethod
    def _visible(data: ev.NodeData) -> bool:
        return (
            data.node_type not in _QUIET_NODE_TYPES
            and data.iteration_id is None
            and data.loop_id is None
        )

    def _agent_thought(self, thought: ev.AgentThought) -> str | None:
        # The same thought id is sent several times as it fills in (rec. 31e): announce the
        # tool call once, then its observation once.
        if not thought.tool:
            return None
        if thought.observation:
            key = (thought.id, "observation")
            if key in self._announced_tools:
                return None
            self._announced_tools.add(key)
            return f"{thought.tool} returned: {_short(thought.observation)}\n"
        key = (thought.id, "call")
        if key in self._announced_tools:
            return None
        self._announced_tools.add(key)
        args = _tool_input(thought.tool_input)
        return f"Using {thought.tool}{': ' + args if args else ''}\n"
