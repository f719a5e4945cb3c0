"""agent-chat's `agent_thought` bookkeeping (31a, 31e) and what `/v1/messages` stores (31d, 31f).

Without a tool call: thought(pos 1, empty) → agent_message* → thought(pos 1, full text).
With a tool call (31e): thought(pos 1, empty) → agent_message "" → thought(pos 1, tool,
tool_labels, tool_input) → thought(pos 1, + observation) → thought(pos 2, empty) →
agent_message* → thought(pos 2, full text). The same thought `id` is re-sent as it fills up.
"""

from __future__ import annotations

from typing import Any

from .run import Emit, RunContext
from .store import new_id
from .tools import ToolCall
from .wire import AgentMessageEvent, AgentThoughtEvent


class AgentTrace:
    def __init__(self, ctx: RunContext, emit: Emit, common: dict[str, Any]) -> None:
        self.ctx = ctx
        self.emit = emit
        self.common = common
        self.thoughts: list[dict[str, Any]] = []  # stored form, one per position

    @property
    def _current(self) -> dict[str, Any]:
        return self.thoughts[-1]

    def open(self) -> None:
        """A new thought at the next position, sent empty."""
        self.thoughts.append(
            {
                "id": new_id(),
                "chain_id": None,
                "message_id": self.ctx.message_id,
                "position": len(self.thoughts) + 1,
                "thought": "",
                "tool": "",
                "tool_labels": {},
                "tool_input": "",
                "created_at": self.ctx.created_at,
                "observation": "",
                "files": [],
            }
        )
        self._send()

    def message(self, chunk: str) -> None:
        self.emit(
            AgentMessageEvent(
                event="agent_message", **self.common, id=self.ctx.message_id, answer=chunk
            )
        )

    def close(self, text: str) -> None:
        self._current["thought"] = text
        self._send()

    def tool_round(self, tool: ToolCall) -> str:
        """The model's tool-calling turn (31e); returns the tool's text result."""
        self.open()
        self.message("")
        self._current.update(
            tool=tool.name, tool_labels={tool.name: tool.labels}, tool_input=tool.tool_input
        )
        self._send()
        result = tool.run(tool.params)
        self._current["observation"] = tool.observation(result)
        self._send()
        return result

    def _send(self) -> None:
        t = self._current
        self.emit(
            AgentThoughtEvent(
                event="agent_thought",
                **self.common,
                id=t["id"],
                position=t["position"],
                thought=t["thought"],
                observation=t["observation"],
                tool=t["tool"],
                tool_labels=t["tool_labels"],
                tool_input=t["tool_input"],
                message_files=[],
            )
        )
