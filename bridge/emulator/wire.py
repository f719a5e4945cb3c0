"""Dify Service API wire types, field for field in the order Dify 1.13.2 serialises them.

msgspec encodes Struct fields in declaration order, so the byte order of every event matches the
recordings (README table "SSE event types seen"). Fields that only some app modes carry are
`UNSET` elsewhere and are then left out (e.g. completion events have no `conversation_id`, 32a).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from msgspec import UnsetType

Selector = list[str] | None


# --- chatflow / workflow graph events --------------------------------------------------------


class WorkflowStartedData(msgspec.Struct):
    id: str
    workflow_id: str
    inputs: dict[str, Any]
    created_at: int
    reason: str = "initial"


class NodeStartedData(msgspec.Struct):
    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    predecessor_node_id: str | None
    inputs: dict[str, Any] | None
    inputs_truncated: bool
    created_at: int
    extras: dict[str, Any]
    iteration_id: str | None
    loop_id: str | None
    agent_strategy: Any = None


class NodeFinishedData(msgspec.Struct):
    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    predecessor_node_id: str | None
    inputs: dict[str, Any] | None
    inputs_truncated: bool
    process_data: dict[str, Any] | None
    process_data_truncated: bool
    outputs: dict[str, Any] | None
    outputs_truncated: bool
    status: str
    error: str | None
    elapsed_time: float
    execution_metadata: dict[str, Any] | None
    created_at: int
    finished_at: int
    files: list[Any]
    iteration_id: str | None
    loop_id: str | None


class WorkflowFinishedData(msgspec.Struct):
    id: str
    workflow_id: str
    status: str
    outputs: dict[str, Any]
    error: str | None
    elapsed_time: float
    total_tokens: int
    total_steps: int
    created_by: dict[str, Any]
    created_at: int
    finished_at: int
    exceptions_count: int
    files: list[Any]


class ContainerStartedData(msgspec.Struct):
    """`iteration_started` / `loop_started` data (40, 41): `id` is the node id, not a UUID."""

    id: str
    node_id: str
    node_type: str
    title: str
    created_at: int
    extras: dict[str, Any]
    metadata: dict[str, Any]
    inputs: dict[str, Any]
    inputs_truncated: bool = False


class IterationNextData(msgspec.Struct):
    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    created_at: int
    extras: dict[str, Any]


class LoopNextData(msgspec.Struct):
    """Like iteration_next but with `pre_loop_output` before `extras` (41)."""

    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    created_at: int
    pre_loop_output: dict[str, Any]
    extras: dict[str, Any]


class ContainerCompletedData(msgspec.Struct):
    """`iteration_completed` / `loop_completed` data (40, 41)."""

    id: str
    node_id: str
    node_type: str
    title: str
    outputs: dict[str, Any] | None
    outputs_truncated: bool
    created_at: int
    extras: dict[str, Any]
    inputs: dict[str, Any]
    inputs_truncated: bool
    status: str
    error: str | None
    elapsed_time: float
    total_tokens: int
    execution_metadata: dict[str, Any]
    finished_at: int
    steps: int


class TextChunkData(msgspec.Struct):
    text: str
    from_variable_selector: Selector


class ChatflowGraphEvent(msgspec.Struct):
    """workflow_* / node_* / iteration_* / loop_* inside a chatflow (01)."""

    event: str
    conversation_id: str
    message_id: str
    created_at: int
    task_id: str
    workflow_run_id: str
    data: Any


class WorkflowGraphEvent(msgspec.Struct):
    """The same events in workflow apps: only these four top-level fields (05)."""

    event: str
    workflow_run_id: str
    task_id: str
    data: Any


# --- message events ---------------------------------------------------------------------------


class MessageEvent(msgspec.Struct):
    event: str
    conversation_id: str | UnsetType
    message_id: str
    created_at: int
    task_id: str
    id: str
    answer: str
    from_variable_selector: Selector


class MessageEndEvent(msgspec.Struct):
    event: str
    conversation_id: str | UnsetType
    message_id: str
    created_at: int
    task_id: str
    id: str
    metadata: dict[str, Any]
    files: list[Any] | None


class AgentThoughtEvent(msgspec.Struct):
    event: str
    conversation_id: str
    message_id: str
    created_at: int
    task_id: str
    id: str
    position: int
    thought: str
    observation: str
    tool: str
    tool_labels: dict[str, Any]
    tool_input: str
    message_files: list[str]


class AgentMessageEvent(msgspec.Struct):
    event: str
    conversation_id: str
    message_id: str
    created_at: int
    task_id: str
    id: str
    answer: str


class MessageFileEvent(msgspec.Struct):
    """A file an agent's tool sent to the user (46d)."""

    event: str
    conversation_id: str
    message_id: str
    created_at: int
    task_id: str
    id: str
    type: str
    belongs_to: str
    url: str


class MessageReplaceEvent(msgspec.Struct):
    event: str
    conversation_id: str | UnsetType
    message_id: str
    created_at: int
    task_id: str
    answer: str
    reason: str


class ErrorEvent(msgspec.Struct):
    """Stream error of chat/agent/completion apps: no task_id (34a/34c/34d)."""

    event: str
    conversation_id: str | UnsetType
    message_id: str
    created_at: int
    code: str
    status: int
    message: str


class WorkflowErrorEvent(msgspec.Struct):
    """Stream error of a workflow app: the workflow envelope (`workflow_run_id`, null before
    workflow_started) + code, status, message (workflow/generate_response_converter.py)."""

    event: str
    workflow_run_id: str | None
    code: str
    status: int
    message: str


# --- encoders ---------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()


def sse_frame(event: msgspec.Struct) -> bytes:
    """`data: <compact json, non-ASCII raw>` + blank line (README "Framing")."""
    return b"data: " + _encoder.encode(event) + b"\n\n"


PING_FRAME = b"event: ping\n\n"


def to_builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


def flask_json(obj: Any) -> bytes:
    """Plain API bodies (errors, /parameters…): compact, ASCII-escaped, `\\/` (10, 14a, 18a)."""
    text = json.dumps(to_builtins(obj), separators=(",", ":"), ensure_ascii=True)
    return (text.replace("/", "\\/") + "\n").encode()


def blocking_json(obj: Any) -> bytes:
    """Blocking generation bodies use `", "` / `": "` separators and \\uXXXX escapes (03, 06)."""
    return json.dumps(to_builtins(obj), ensure_ascii=True).encode()
