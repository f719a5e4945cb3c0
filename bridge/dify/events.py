"""Dify stream events as a msgspec tagged union on `event`.

Only the fields the bridge reads are declared; msgspec skips the rest, so new Dify fields never
break decoding. Events the bridge does not know decode to `UnknownEvent` (logged, ignored).
Field facts come from the Dify 1.13.2 recordings (tests/fixtures/recordings/README.md).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Struct


class _Event(Struct, tag_field="event", kw_only=True):
    task_id: str | None = None
    conversation_id: str | None = None
    message_id: str | None = None
    workflow_run_id: str | None = None


class Message(_Event, tag="message"):
    answer: str = ""
    from_variable_selector: list[str] | None = None


class AgentMessage(_Event, tag="agent_message"):
    answer: str = ""


class AgentThought(_Event, tag="agent_thought"):
    id: str = ""
    position: int = 0
    thought: str | None = None
    observation: str | None = None
    tool: str | None = None
    tool_input: str | None = None
    message_files: list[str] | None = None


class MessageFile(_Event, tag="message_file"):
    id: str = ""
    type: str = ""
    belongs_to: str | None = None
    url: str = ""
    # Dify 1.11.2-1.12.x send a chat/completion app's answer chunks as `message_file` events
    # carrying `answer` and no `url` when the message has any file, user uploads included
    # (dify-versions.md §2.6, dify#31888): such an event is answer text, not a file.
    answer: str | None = None

    @property
    def is_text(self) -> bool:
        return self.answer is not None and not self.url


class DifyUsage(Struct, kw_only=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class MessageMetadata(Struct, kw_only=True):
    usage: DifyUsage | None = None
    retriever_resources: list[dict[str, Any]] | None = None


class MessageEnd(_Event, tag="message_end"):
    metadata: MessageMetadata = msgspec.field(default_factory=MessageMetadata)
    files: list[dict[str, Any]] | None = None


class MessageReplace(_Event, tag="message_replace"):
    answer: str = ""
    reason: str | None = None


class TextChunkData(Struct, kw_only=True):
    text: str = ""
    from_variable_selector: list[str] | None = None


class TextChunk(_Event, tag="text_chunk"):
    data: TextChunkData


class WorkflowStartedData(Struct, kw_only=True):
    id: str = ""
    workflow_id: str | None = None


class WorkflowStarted(_Event, tag="workflow_started"):
    data: WorkflowStartedData


class NodeData(Struct, kw_only=True):
    id: str = ""
    node_id: str = ""
    node_type: str = ""
    title: str = ""
    status: str | None = None
    error: str | None = None
    elapsed_time: float | None = None
    outputs: dict[str, Any] | None = None
    files: list[dict[str, Any]] | None = None
    iteration_id: str | None = None
    loop_id: str | None = None


class NodeStarted(_Event, tag="node_started"):
    data: NodeData


class NodeFinished(_Event, tag="node_finished"):
    data: NodeData


class NodeRetry(_Event, tag="node_retry"):
    data: NodeData


class WorkflowFinishedData(Struct, kw_only=True):
    id: str = ""
    status: str = ""
    outputs: dict[str, Any] | None = None
    error: str | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    total_steps: int | None = None
    files: list[dict[str, Any]] | None = None


class WorkflowFinished(_Event, tag="workflow_finished"):
    data: WorkflowFinishedData


class WorkflowPaused(_Event, tag="workflow_paused"):
    """Dify ≥ 1.13: the run waits for a Human Input form, answered only through Dify's web
    API, never the Service API; for a bridge client the run ends here (dify-versions.md §2.7)."""

    data: dict[str, Any] = msgspec.field(default_factory=dict)


class StepData(Struct, kw_only=True):
    """Iteration and loop progress (the container node itself has no node events; rec. 40/41)."""

    id: str = ""
    node_id: str = ""
    title: str = ""
    index: int | None = None
    status: str | None = None
    error: str | None = None
    elapsed_time: float | None = None
    steps: int | None = None
    metadata: dict[str, Any] | None = None


class IterationStarted(_Event, tag="iteration_started"):
    data: StepData


class IterationNext(_Event, tag="iteration_next"):
    data: StepData


class IterationCompleted(_Event, tag="iteration_completed"):
    data: StepData


class LoopStarted(_Event, tag="loop_started"):
    data: StepData


class LoopNext(_Event, tag="loop_next"):
    data: StepData


class LoopCompleted(_Event, tag="loop_completed"):
    data: StepData


class AgentLogData(Struct, kw_only=True):
    label: str | None = None
    status: str | None = None
    error: str | None = None


class AgentLog(_Event, tag="agent_log"):
    data: AgentLogData


class ReasoningChunkData(Struct, kw_only=True):
    reasoning: str = ""
    is_final: bool = False


class ReasoningChunk(_Event, tag="reasoning_chunk"):
    data: ReasoningChunkData


class ErrorEvent(_Event, tag="error"):
    # No task_id on error events (recording 34a).
    code: str | None = None
    status: int | None = None
    message: str = ""


class Ping(Struct):
    """Dify's keepalive: `event: ping` with no data line."""


PING = Ping()


class UnknownEvent(Struct):
    event: str
    raw: bytes


DifyEvent = (
    Message
    | AgentMessage
    | AgentThought
    | MessageFile
    | MessageEnd
    | MessageReplace
    | TextChunk
    | WorkflowStarted
    | NodeStarted
    | NodeFinished
    | NodeRetry
    | WorkflowFinished
    | WorkflowPaused
    | IterationStarted
    | IterationNext
    | IterationCompleted
    | LoopStarted
    | LoopNext
    | LoopCompleted
    | AgentLog
    | ReasoningChunk
    | ErrorEvent
)

StreamItem = DifyEvent | Ping | UnknownEvent

_decoder = msgspec.json.Decoder(DifyEvent)


class _Tag(Struct):
    event: str = ""


_tag_decoder = msgspec.json.Decoder(_Tag)


def decode_event(sse_event: str, data: str | bytes) -> StreamItem:
    """Decode one SSE event from Dify into a typed event.

    Raises `msgspec.DecodeError` only for malformed JSON or a known event with wrong field
    types; an unknown event name is not an error.
    """
    if not data:
        return PING if sse_event in ("ping", "") else UnknownEvent(event=sse_event, raw=b"")
    raw = data.encode() if isinstance(data, str) else data
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError:
        tag = _tag_decoder.decode(raw).event
        if tag in _KNOWN_TAGS:
            raise
        return UnknownEvent(event=tag, raw=raw)


_KNOWN_TAGS = frozenset(
    cls.__struct_config__.tag
    for cls in DifyEvent.__args__  # type: ignore[attr-defined]
)
