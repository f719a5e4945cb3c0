"""agent-chat's `agent_thought` bookkeeping (31a, 31e) and what `/v1/messages` stores (31d, 31f).

Without a tool call: thought(pos 1, empty) → agent_message* → thought(pos 1, full text).
With a tool call (31e): thought(pos 1, empty) → agent_message "" → thought(pos 1, tool,
tool_labels, tool_input) → thought(pos 1, + observation) → thought(pos 2, empty) →
agent_message* → thought(pos 2, full text). The same thought `id` is re-sent as it fills up.
A tool that produces files (a workflow tool, 46d) sends one `message_file` per file before the
observation, and the observation's thought lists their ids in `message_files`.
"""

from __future__ import annotations

from typing import Any

from .run import Emit, RunContext
from .store import new_id
from .tools import ToolCall, ToolFailed
from .wire import AgentMessageEvent, AgentThoughtEvent, MessageFileEvent


class AgentTrace:
    def __init__(self, ctx: RunContext, emit: Emit, common: dict[str, Any]) -> None:
        self.ctx = ctx
        self.emit = emit
        self.common = common
        self.thoughts: list[dict[str, Any]] = []  # stored form, one per position
        self.sent_files: list[tuple[str, dict[str, Any]]] = []  # (message_file id, File)

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

    async def tool_round(self, tool: ToolCall) -> str:
        """The model's tool-calling turn (31e, 46d); returns the tool's text result."""
        self.open()
        self.message("")
        self._current.update(
            tool=tool.name, tool_labels={tool.name: tool.labels}, tool_input=tool.tool_input
        )
        self._send()
        try:
            result = await tool.invoke(tool.params)
        except ToolFailed as exc:
            text, files = f"tool invoke error: {exc}", []
        else:
            text, files = result.text, result.files
        for file in files:
            message_file_id = new_id()
            self.emit(
                MessageFileEvent(
                    event="message_file",
                    **self.common,
                    id=message_file_id,
                    type=str(file.get("type")),
                    belongs_to="assistant",
                    url=str(file.get("url")),
                )
            )
            self._current["files"].append(message_file_id)
            self.sent_files.append((message_file_id, file))
        self._current["observation"] = tool.observation(text)
        self._send()
        return text

    def end_files(self) -> list[dict[str, Any]] | None:
        """`message_end.files` of an agent: null without files, else 46d's own shape."""
        if not self.sent_files:
            return None
        return [
            {
                "related_id": message_file_id,
                "extension": file.get("extension"),
                "filename": f"{file.get('related_id')}{file.get('extension') or ''}",
                "size": 0,
                "mime_type": "application/octet-stream",
                "transfer_method": file.get("transfer_method"),
                "type": file.get("type"),
                "url": file.get("url"),
                "upload_file_id": file.get("related_id"),
                "remote_url": "",
            }
            for message_file_id, file in self.sent_files
        ]

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
                message_files=list(t["files"]),
            )
        )
