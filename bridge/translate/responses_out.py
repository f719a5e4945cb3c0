"""Responses API output (pure, no I/O): the bridge's stream items → Responses events.

:class:`ResponseBuilder` turns output items into the Responses event sequence and the final
`Response` object; :class:`ResponseEncoder` frames those events as SSE and
:class:`ResponseAggregator` keeps only the final object (non-stream requests). The request
side is `bridge.translate.responses`.

Output layout: reasoning (Dify flow steps, thinking) becomes a `reasoning` output item with
one summary part; answer text becomes a `message` item with one `output_text` part. When they
alternate, each switch closes the open item and opens a new one, so the order the client saw
is kept. A run that ends without text still gets an empty message, where clients look for it.
Every item has an id of its own (`rs_…`, `msg_…`): the response store keeps them, so that a
later request can name one in an `item_reference`.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import msgspec

from bridge.errors import BridgeError
from bridge.openai.responses import (
    ContentPartAdded,
    ContentPartDone,
    ErrorDetail,
    ErrorEvent,
    OutputItem,
    OutputItemAdded,
    OutputItemDone,
    OutputMessage,
    OutputText,
    OutputTextDelta,
    OutputTextDone,
    ReasoningItem,
    ResponseCompleted,
    ResponseCreated,
    ResponseCreateRequest,
    ResponseError,
    ResponseEvent,
    ResponseFailed,
    ResponseInProgress,
    ResponseObject,
    ResponseStatus,
    ResponseUsage,
    SummaryPartAdded,
    SummaryPartDone,
    SummaryText,
    SummaryTextDelta,
    SummaryTextDone,
)
from bridge.translate.stream import (
    ContentDelta,
    ContentReplaced,
    Failed,
    Finished,
)
from bridge.translate.stream import OutputItem as StreamItem

_encoder = msgspec.json.Encoder()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


class _OpenItem:
    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind = kind
        self.index = index
        self.id = item_id
        self.text = ""


class ResponseBuilder:
    """Output items → Responses events, and the `Response` object they add up to."""

    def __init__(
        self,
        request: ResponseCreateRequest,
        *,
        replace_in_place: bool = False,
    ) -> None:
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.request = request
        # Non-stream answers can take a moderation replacement instead of the text; a stream
        # cannot retract what it sent, so the replacement follows it (as for chat).
        self.replace_in_place = replace_in_place
        self.output: list[OutputItem] = []
        self.final: ResponseObject | None = None
        self._open: _OpenItem | None = None
        self._sequence = 0

    @property
    def output_text(self) -> str:
        texts = [
            part.text
            for item in self.output
            if isinstance(item, OutputMessage)
            for part in item.content
        ]
        if self._open is not None and self._open.kind == "message":
            texts.append(self._open.text)
        return "".join(texts)

    def response(
        self,
        status: ResponseStatus,
        *,
        usage: ResponseUsage | None = None,
        error: ResponseError | None = None,
    ) -> ResponseObject:
        request = self.request
        return ResponseObject(
            id=self.id,
            created_at=self.created_at,
            model=request.model,
            status=status,
            output=list(self.output) if status != "in_progress" else [],
            error=error,
            instructions=request.instructions,
            previous_response_id=request.previous_response_id,
            store=request.store is not False,
            temperature=_number(request.temperature),
            top_p=_number(request.top_p),
            usage=usage,
            user=request.user,
            metadata=request.metadata or {},
            completed_at=int(time.time()) if status == "completed" else None,
        )

    def _seq(self) -> int:
        number = self._sequence
        self._sequence += 1
        return number

    def start(self) -> list[ResponseEvent]:
        return [
            ResponseCreated(sequence_number=self._seq(), response=self.response("in_progress")),
            ResponseInProgress(sequence_number=self._seq(), response=self.response("in_progress")),
        ]

    def feed(self, item: StreamItem) -> list[ResponseEvent]:
        match item:
            case ContentDelta(text=text):
                return self._text("message", text)
            case ContentReplaced(text=text):
                if self.replace_in_place:
                    self._replace_text(text)
                    return []
                separator = "\n\n" if self.output_text else ""
                return self._text("message", separator + text)
            case Finished(usage=usage):
                events = self._close("completed")
                if not any(isinstance(out, OutputMessage) for out in self.output):
                    events += self._open_item("message") + self._close("completed")
                self.final = self.response("completed", usage=ResponseUsage.from_chat(usage))
                return [
                    *events,
                    ResponseCompleted(sequence_number=self._seq(), response=self.final),
                ]
            case Failed(error=error):
                events = self._close("incomplete")
                self.final = self.response(
                    "failed",
                    error=ResponseError(code=_error_code(error), message=error.message),
                )
                return [
                    *events,
                    ResponseFailed(sequence_number=self._seq(), response=self.final),
                    ErrorEvent(
                        sequence_number=self._seq(),
                        code=error.code,
                        message=error.message,
                        param=error.param,
                        error=ErrorDetail(message=error.message, type=error.type, code=error.code),
                    ),
                ]
        # ReasoningDelta is the only other item.
        return self._text("reasoning", item.text)

    def _text(self, kind: str, text: str) -> list[ResponseEvent]:
        events: list[ResponseEvent] = []
        if self._open is None or self._open.kind != kind:
            events += self._close("completed")
            events += self._open_item(kind)
        assert self._open is not None
        self._open.text += text
        if kind == "message":
            events.append(
                OutputTextDelta(
                    sequence_number=self._seq(),
                    item_id=self._open.id,
                    output_index=self._open.index,
                    content_index=0,
                    delta=text,
                )
            )
        else:
            events.append(
                SummaryTextDelta(
                    sequence_number=self._seq(),
                    item_id=self._open.id,
                    output_index=self._open.index,
                    summary_index=0,
                    delta=text,
                )
            )
        return events

    def _replace_text(self, text: str) -> None:
        """Non-stream moderation: the answer becomes the replacement, in one message."""
        self._close("completed")
        self.output = [out for out in self.output if not isinstance(out, OutputMessage)]
        self._open_item("message")
        assert self._open is not None
        self._open.text = text

    def _open_item(self, kind: str) -> list[ResponseEvent]:
        index = len(self.output)
        if kind == "message":
            self._open = _OpenItem(kind, index, new_id("msg"))
            return [
                OutputItemAdded(
                    sequence_number=self._seq(),
                    output_index=index,
                    item=OutputMessage(id=self._open.id, status="in_progress", content=[]),
                ),
                ContentPartAdded(
                    sequence_number=self._seq(),
                    item_id=self._open.id,
                    output_index=index,
                    content_index=0,
                    part=OutputText(text=""),
                ),
            ]
        self._open = _OpenItem(kind, index, new_id("rs"))
        return [
            OutputItemAdded(
                sequence_number=self._seq(),
                output_index=index,
                item=ReasoningItem(id=self._open.id, summary=[], status="in_progress"),
            ),
            SummaryPartAdded(
                sequence_number=self._seq(),
                item_id=self._open.id,
                output_index=index,
                summary_index=0,
                part=SummaryText(text=""),
            ),
        ]

    def _close(self, status: str) -> list[ResponseEvent]:
        current, self._open = self._open, None
        if current is None:
            return []
        events: list[ResponseEvent]
        item: OutputItem
        if current.kind == "message":
            part = OutputText(text=current.text)
            item = OutputMessage(id=current.id, status=status, content=[part])  # type: ignore[arg-type]
            events = [
                OutputTextDone(
                    sequence_number=self._seq(),
                    item_id=current.id,
                    output_index=current.index,
                    content_index=0,
                    text=current.text,
                ),
                ContentPartDone(
                    sequence_number=self._seq(),
                    item_id=current.id,
                    output_index=current.index,
                    content_index=0,
                    part=part,
                ),
            ]
        else:
            summary = SummaryText(text=current.text)
            item = ReasoningItem(id=current.id, summary=[summary], status=status)  # type: ignore[arg-type]
            events = [
                SummaryTextDone(
                    sequence_number=self._seq(),
                    item_id=current.id,
                    output_index=current.index,
                    summary_index=0,
                    text=current.text,
                ),
                SummaryPartDone(
                    sequence_number=self._seq(),
                    item_id=current.id,
                    output_index=current.index,
                    summary_index=0,
                    part=summary,
                ),
            ]
        self.output.append(item)
        events.append(
            OutputItemDone(sequence_number=self._seq(), output_index=current.index, item=item)
        )
        return events


def _error_code(error: BridgeError) -> str:
    # `Response.error.code` is an OpenAI enum; the bridge's own code goes in the error event.
    return "rate_limit_exceeded" if error.status == 429 else "server_error"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def sse_event(event: ResponseEvent) -> bytes:
    data = _encoder.encode(event)
    kind = type(event).__struct_config__.tag
    return b"event: " + str(kind).encode() + b"\ndata: " + data + b"\n\n"


class ResponseEncoder:
    """The engine's encoder interface (`start() -> bytes`, `encode(item) -> list[bytes]`)
    for a streamed Response. There is no `[DONE]`: the stream ends after the terminal event."""

    def __init__(self, builder: ResponseBuilder) -> None:
        self.builder = builder

    def start(self) -> bytes:
        return b"".join(sse_event(event) for event in self.builder.start())

    def encode(self, item: StreamItem) -> list[bytes]:
        return [sse_event(event) for event in self.builder.feed(item)]


class ResponseAggregator:
    """The engine's aggregator interface (`add(item)`, `result()`) for a non-stream Response."""

    def __init__(self, builder: ResponseBuilder) -> None:
        self.builder = builder

    def add(self, item: StreamItem) -> None:
        if isinstance(item, Failed):
            raise item.error
        self.builder.feed(item)

    def result(self) -> ResponseObject:
        if self.builder.final is None:
            raise BridgeError(
                502, "Dify ended the run without an answer.", code="dify_no_answer", retryable=False
            )
        return self.builder.final
