"""Dify stream events → bridge output items: a small state machine with no I/O.

`StreamTranslator.feed(event)` returns what the client should get for that event;
`finish()` is called when Dify's stream ended. Both `chat.completion.chunk` SSE and the
aggregated `chat.completion` are built from these items (see `translate.openai_out`).
"""

from __future__ import annotations

import json

import msgspec

from bridge.dify import events as ev
from bridge.errors import BridgeError
from bridge.openai.types import Usage
from bridge.translate.reasoning import StepNarrator
from bridge.translate.think import ThinkSplitter


class ContentDelta(msgspec.Struct):
    text: str


class ReasoningDelta(msgspec.Struct):
    text: str


class ContentReplaced(msgspec.Struct):
    """Output moderation replaced the whole answer (Dify `message_replace`, rec. 44b/44d)."""

    text: str


class Finished(msgspec.Struct):
    finish_reason: str
    usage: Usage | None


class Failed(msgspec.Struct):
    error: BridgeError


OutputItem = ContentDelta | ReasoningDelta | ContentReplaced | Finished | Failed


def usage_from_dify(usage: ev.DifyUsage | None) -> Usage | None:
    if usage is None:
        return None
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def workflow_answer(outputs: dict | None, output_variable: str | None) -> str:
    """The answer of a workflow run when it streamed no text: the chosen output variable,
    the single string output as is, otherwise all outputs as JSON."""
    outputs = outputs or {}
    if output_variable is not None:
        value = outputs.get(output_variable)
    elif len(outputs) == 1:
        value = next(iter(outputs.values()))
    else:
        value = outputs
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def flow_failure(message: str | None, *, stopped: bool = False) -> BridgeError:
    """A chatflow/workflow that failed: deterministic, so 4xx-class and never retried."""
    if stopped:
        return BridgeError(
            499,
            "The Dify run was stopped before it finished.",
            code="dify_run_stopped",
            type="server_error",
            retryable=False,
        )
    return BridgeError(
        400,
        f"The Dify app failed: {message or 'unknown error'}",
        code="dify_workflow_failed",
        type="invalid_request_error",
        retryable=False,
    )


def error_event_failure(event: ev.ErrorEvent) -> BridgeError:
    status = event.status or 500
    if 400 <= status < 500:
        return BridgeError(
            400, event.message or "Dify reported an error", code=event.code, retryable=False
        )
    return BridgeError(
        502, event.message or "Dify reported an error", code=event.code, type="server_error"
    )


class StreamTranslator:
    """Turns one Dify event stream into output items, tracking what the client has seen."""

    def __init__(
        self,
        mode: str,
        *,
        output_variable: str | None = None,
        reasoning: bool = False,
        split_think_tags: bool = True,
    ) -> None:
        self.mode = mode
        self.output_variable = output_variable
        self.task_id: str | None = None
        self.conversation_id: str | None = None
        self.message_id: str | None = None
        self.workflow_run_id: str | None = None
        self.started = False  # a real (non-ping) event arrived
        self.done = False
        self.answer = ""  # content as the client should finally hold it
        self.reasoning_text = ""
        self._streamed_text = False
        self._narrator = StepNarrator() if reasoning else None
        self._think = ThinkSplitter() if split_think_tags else None

    # -- public -------------------------------------------------------------------------

    def feed(self, event: ev.StreamItem) -> list[OutputItem]:
        if self.done or isinstance(event, ev.Ping | ev.UnknownEvent):
            return []
        self.started = True
        self._learn_ids(event)
        out: list[OutputItem] = []
        if self._narrator is not None and not self._streamed_text:
            # Steps are narrated until the answer starts; after that they would interleave
            # with it (in a chatflow the Answer streams while its node is still running).
            line = self._narrator.describe(event)
            if line:
                out.append(self._reasoning(line))
        match event:
            case ev.Message(answer=text) | ev.AgentMessage(answer=text):
                out.extend(self._text(text))
            case ev.TextChunk(data=data) if self.mode == "workflow":
                out.extend(self._text(data.text))
            case ev.MessageReplace(answer=text):
                out.extend(self._flush_think())
                self.answer = text
                out.append(ContentReplaced(text))
            case ev.MessageEnd(metadata=metadata):
                out.extend(self._finish(usage_from_dify(metadata.usage)))
            case ev.WorkflowFinished(data=data):
                out.extend(self._workflow_finished(data))
            case ev.ErrorEvent():
                out.append(self._fail(error_event_failure(event)))
        return out

    def finish(self) -> list[OutputItem]:
        """Dify closed the stream. Without a terminal event that is an error, never an empty
        successful answer (rec. 07b: a missing required input gives one ping and EOF)."""
        if self.done:
            return []
        if not self.started:
            return [
                self._fail(
                    BridgeError(
                        400,
                        "Dify closed the stream without running the app. This usually means a "
                        "required app input is missing or the conversation does not exist.",
                        code="dify_empty_stream",
                        retryable=False,
                    )
                )
            ]
        return [
            self._fail(
                BridgeError(
                    502,
                    "Dify closed the stream before the answer was complete.",
                    code="dify_stream_interrupted",
                    type="server_error",
                    retryable=False,
                )
            )
        ]

    # -- internals ----------------------------------------------------------------------

    def _learn_ids(self, event: ev.DifyEvent) -> None:
        self.task_id = event.task_id or self.task_id
        self.conversation_id = event.conversation_id or self.conversation_id
        self.message_id = event.message_id or self.message_id
        self.workflow_run_id = event.workflow_run_id or self.workflow_run_id

    def _reasoning(self, text: str) -> ReasoningDelta:
        self.reasoning_text += text
        return ReasoningDelta(text)

    def _text(self, text: str) -> list[OutputItem]:
        # Dify sends empty answer pieces (rec. 22a, 30a); an empty delta helps nobody.
        if not text:
            return []
        self._streamed_text = True
        if self._think is None:
            self.answer += text
            return [ContentDelta(text)]
        out: list[OutputItem] = []
        for kind, piece in self._think.feed(text):
            out.append(self._piece(kind, piece))
        return out

    def _piece(self, kind: str, piece: str) -> OutputItem:
        if kind == "reasoning":
            return self._reasoning(piece)
        self.answer += piece
        return ContentDelta(piece)

    def _flush_think(self) -> list[OutputItem]:
        if self._think is None:
            return []
        return [self._piece(kind, piece) for kind, piece in self._think.flush()]

    def _finish(self, usage: Usage | None, reason: str = "stop") -> list[OutputItem]:
        out = self._flush_think()
        self.done = True
        out.append(Finished(reason, usage))
        return out

    def _fail(self, error: BridgeError) -> Failed:
        self.done = True
        return Failed(error)

    def _workflow_finished(self, data: ev.WorkflowFinishedData) -> list[OutputItem]:
        if data.status == "failed":
            return [self._fail(flow_failure(data.error))]
        if data.status == "stopped":
            if self.mode == "workflow" or not self._streamed_text:
                return [self._fail(flow_failure(data.error, stopped=True))]
            return self._finish(None)
        out: list[OutputItem] = []
        if self.mode == "workflow" and not self._streamed_text:
            out.extend(self._text(workflow_answer(data.outputs, self.output_variable)))
        usage = None
        if data.total_tokens is not None:
            # Dify reports only a total for workflow runs; it is not split into prompt/completion.
            usage = Usage(
                prompt_tokens=0, completion_tokens=data.total_tokens, total_tokens=data.total_tokens
            )
        out.extend(self._finish(usage))
        return out
