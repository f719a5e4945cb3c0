"""Dify stream events → bridge output items: a small state machine with no I/O.

`StreamTranslator.feed(event)` returns what the client should get for that event;
`finish()` is called when Dify's stream ended. Both `chat.completion.chunk` SSE and the
aggregated `chat.completion` are built from these items (see `translate.openai_out`).
"""

from __future__ import annotations

# Re-exported: the items and failures are part of this module's face.
__all__ = [
    "EMPTY_ANSWER_NOTE",
    "ContentDelta",
    "ContentReplaced",
    "Failed",
    "Finished",
    "OutputItem",
    "ReasoningDelta",
    "StreamTranslator",
    "coalesced",
    "error_event_failure",
    "flow_failure",
    "stream_interrupted",
    "usage_from_dify",
    "workflow_answer",
    "workflow_paused",
]

import json

import msgspec

from bridge.dify import events as ev
from bridge.errors import BridgeError
from bridge.openai.types import Usage
from bridge.translate.citations import sources_list
from bridge.translate.failures import (
    error_event_failure,
    flow_failure,
    stream_interrupted,
    workflow_paused,
)
from bridge.translate.files import (
    FileCollector,
    RelativeLinkFixer,
    file_from_message_file,
    file_from_object,
    files_in_outputs,
    is_file_value,
)
from bridge.translate.items import (
    ContentDelta,
    ContentReplaced,
    Failed,
    Finished,
    OutputItem,
    ReasoningDelta,
    coalesced,
)
from bridge.translate.reasoning import StepNarrator
from bridge.translate.think import ThinkSplitter

# FastGPT reports an answer that has reasoning but no content as an empty-response error
# (clients.md); a run that showed its steps and then answered nothing ends with this instead.
EMPTY_ANSWER_NOTE = "(The app finished without an answer.)"


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
    the single string output as is, otherwise all outputs as JSON. File outputs are left out
    here: they are shown as Markdown links after the answer (see `translate.files`)."""
    outputs = {k: v for k, v in (outputs or {}).items() if not is_file_value(v)}
    if output_variable is not None:
        value = outputs.get(output_variable)
    elif len(outputs) == 1:
        value = next(iter(outputs.values()))
    else:
        value = outputs or None
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


_JOINABLE = (ev.Message, ev.AgentMessage)


def _joined_answers(events: list[ev.StreamItem]) -> list[ev.StreamItem]:
    """Consecutive `message` (or `agent_message`) events as one event with their answers
    joined; they carry the same ids, and narration ignores them."""
    if len(events) < 2:
        return events
    out: list[ev.StreamItem] = []
    run: list[str] = []
    for event in events:
        previous = out[-1] if out else None
        if type(event) in _JOINABLE and type(previous) is type(event):
            run.append(event.answer)  # type: ignore[union-attr]
            continue
        if len(run) > 1:
            out[-1] = msgspec.structs.replace(out[-1], answer="".join(run))  # type: ignore[type-var]
        run = [event.answer] if type(event) in _JOINABLE else []  # type: ignore[union-attr]
        out.append(event)
    if len(run) > 1:
        out[-1] = msgspec.structs.replace(out[-1], answer="".join(run))  # type: ignore[type-var]
    return out


class StreamTranslator:
    """Turns one Dify event stream into output items, tracking what the client has seen.

    - `reasoning`: narrate the flow's steps as reasoning lines (`StepNarrator`).
    - `thinking`: the app's own LLM thinking (`<think>` blocks, `reasoning_chunk`) goes to the
      reasoning channel; False drops it (model option `reasoning: off`).
    - `hold_content`: moderation `hold` — answer text is kept back until `message_end`, so a
      `message_replace` (rec. 44b/44d) swaps it before the client saw any of it.
    - `citations`: append `retriever_resources` as a sources list.
    - `files_base`: where Dify's relative `/files/…` URLs live; None leaves them as they are.
    """

    def __init__(
        self,
        mode: str,
        *,
        output_variable: str | None = None,
        reasoning: bool = False,
        thinking: bool = True,
        split_think_tags: bool = True,
        hold_content: bool = False,
        citations: bool = False,
        files_base: str | None = None,
    ) -> None:
        self.mode = mode
        self.output_variable = output_variable
        self.task_id: str | None = None
        self.conversation_id: str | None = None
        self.message_id: str | None = None
        self.workflow_run_id: str | None = None
        self.started = False  # a real (non-ping) event arrived
        self.done = False
        # Dify itself ended the run (answer finished, failed or stopped): nothing to stop.
        # False when `done` because the bridge gave up on the stream.
        self.run_over = False
        # A chatflow whose workflow finished before its `message_end` (Dify ≤ 1.12, and 1.13.0
        # where no `message_end` comes at all): the answer ends at `message_end`, or at the
        # end of the stream, with this usage.
        self._flow_finished = False
        self._flow_usage: Usage | None = None
        self.answer = ""  # content as the client should finally hold it
        self.reasoning_text = ""
        self.hold_content = hold_content
        self._citations = citations
        self._thinking = thinking
        self._files_base = files_base
        self._streamed_text = False
        self._line = ""  # reasoning of the current line, sent once the line is whole
        self._held: list[str] = []
        self._narrator = StepNarrator() if reasoning else None
        self._think = ThinkSplitter() if split_think_tags else None
        self._links = RelativeLinkFixer(files_base)
        self._files = FileCollector()

    # -- public -------------------------------------------------------------------------

    def feed_all(self, events: list[ev.StreamItem]) -> list[OutputItem]:
        """`feed` for everything one network read brought. Runs of answer pieces are joined
        first, so the per-text work (think tags, link fixing, one delta) happens per run, not
        per piece: the splitters hold back partial tags, so joining never changes the text."""
        out: list[OutputItem] = []
        for event in _joined_answers(events):
            out.extend(self.feed(event))
        return out

    def feed(self, event: ev.StreamItem) -> list[OutputItem]:
        if self.done or isinstance(event, ev.Ping | ev.UnknownEvent):
            return []
        self.started = True
        self._learn_ids(event)
        out: list[OutputItem] = []
        if (
            self._narrator is not None
            and not self._streamed_text
            and not isinstance(event, ev.ReasoningChunk)
        ):
            # Steps are narrated until the answer starts; after that they would interleave
            # with it (in a chatflow the Answer streams while its node is still running).
            line = self._narrator.describe(event)
            if line:
                out.extend(self._end_reasoning())
                out.extend(self._reasoning(line))
        match event:
            case ev.Message(answer=text) | ev.AgentMessage(answer=text):
                out.extend(self._text(text))
            case ev.TextChunk(data=data) if self.mode == "workflow":
                out.extend(self._text(data.text))
            case ev.ReasoningChunk(data=data) if self._thinking:
                # The app's LLM thinking, already separated by Dify: the same channel as
                # `<think>` blocks split out of the answer (rec. 47*).
                out.extend(self._reasoning(data.reasoning))
                if data.is_final:
                    out.extend(self._end_reasoning())
            case ev.MessageFile(answer=text) if event.is_text:
                out.extend(self._text(text or ""))
            case ev.MessageFile(belongs_to=owner) if owner in (None, "assistant"):
                self._files.add(
                    file_from_message_file(event.id, event.type, event.url, self._files_base)
                )
            case ev.MessageReplace(answer=text):
                out.extend(self._replace(text))
            case ev.MessageEnd(metadata=metadata, files=files):
                for item in files or []:
                    self._files.add(file_from_object(item, self._files_base))
                out.extend(
                    self._finish(
                        usage_from_dify(metadata.usage), sources=metadata.retriever_resources
                    )
                )
            case ev.WorkflowFinished(data=data):
                out.extend(self._workflow_finished(data))
            case ev.WorkflowPaused():
                out.append(self._run_failed(workflow_paused()))
            case ev.ErrorEvent():
                out.append(self._run_failed(error_event_failure(event)))
        return out

    def finish(self) -> list[OutputItem]:
        """Dify closed the stream. Without a terminal event that is an error, never an empty
        successful answer (rec. 07b: a missing required input gives one ping and EOF)."""
        if self.done:
            return []
        if self._flow_finished:
            return self._finish(self._flow_usage)
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
        return [self._fail(stream_interrupted())]

    # -- internals ----------------------------------------------------------------------

    def _learn_ids(self, event: ev.DifyEvent) -> None:
        self.task_id = event.task_id or self.task_id
        self.conversation_id = event.conversation_id or self.conversation_id
        self.message_id = event.message_id or self.message_id
        self.workflow_run_id = event.workflow_run_id or self.workflow_run_id

    def _reasoning(self, text: str) -> list[OutputItem]:
        """Reasoning goes out one whole line per item: Cherry Studio trims every thinking
        fragment, so a line split across chunks would lose its spaces (clients.md)."""
        self._line += text
        if "\n" not in self._line:
            return []
        whole, _, self._line = self._line.rpartition("\n")
        return [self._emit_reasoning(line + "\n") for line in whole.split("\n")]

    def _end_reasoning(self) -> list[OutputItem]:
        """A thinking block ended: its last line is whole now."""
        line, self._line = self._line, ""
        if not line.strip():
            return []
        return [self._emit_reasoning(line + "\n")]

    def _emit_reasoning(self, text: str) -> ReasoningDelta:
        self.reasoning_text += text
        return ReasoningDelta(text)

    def _text(self, text: str) -> list[OutputItem]:
        # Dify sends empty answer pieces (rec. 22a, 30a); an empty delta helps nobody.
        if not text:
            return []
        self._streamed_text = True
        return self._split(self._links.feed(text))

    def _split(self, text: str) -> list[OutputItem]:
        if not text:
            return []
        if self._think is None:
            return self._content(text)
        out: list[OutputItem] = []
        for kind, piece in self._think.feed(text):
            out.extend(self._piece(kind, piece))
        if not self._think.inside:
            out.extend(self._end_reasoning())
        return out

    def _piece(self, kind: str, piece: str) -> list[OutputItem]:
        if kind == "reasoning":
            return self._reasoning(piece) if self._thinking else []
        return self._content(piece)

    def _content(self, text: str) -> list[OutputItem]:
        self.answer += text
        if self.hold_content:
            self._held.append(text)
            return []
        return [ContentDelta(text)]

    def _flush_text(self) -> list[OutputItem]:
        """Everything held back for a possibly split tag or link goes out as it stands."""
        out = self._split(self._links.flush())
        if self._think is not None:
            for kind, piece in self._think.flush():
                out.extend(self._piece(kind, piece))
        out.extend(self._end_reasoning())
        return out

    def _replace(self, text: str) -> list[OutputItem]:
        out = self._flush_text()
        self.answer = text
        if self.hold_content:
            # Nothing of the blocked answer has left the bridge; the replacement is the answer.
            self._held = [text]
            return out
        out.append(ContentReplaced(text))
        return out

    def _finish(
        self,
        usage: Usage | None,
        reason: str = "stop",
        sources: list[dict] | None = None,
    ) -> list[OutputItem]:
        out = self._flush_text()
        if self.hold_content:
            self.hold_content = False
            held, self._held = "".join(self._held), []
            if held:
                out.append(ContentDelta(held))
        extras = [self._files.markdown(self.answer)]
        if self._citations:
            extras.append(sources_list(sources))
        for block in filter(None, extras):
            out.extend(self._content(("\n\n" if self.answer.strip() else "") + block))
        if not self.answer.strip() and self.reasoning_text.strip():
            out.extend(self._content(EMPTY_ANSWER_NOTE))
        self.done = True
        self.run_over = True
        out.append(Finished(reason, usage))
        return out

    def _fail(self, error: BridgeError) -> Failed:
        self.done = True
        return Failed(error)

    def _run_failed(self, error: BridgeError) -> Failed:
        """Dify reported the run's end as a failure (error event, failed or stopped flow)."""
        self.run_over = True
        return self._fail(error)

    def _workflow_finished(self, data: ev.WorkflowFinishedData) -> list[OutputItem]:
        if data.status == "failed":
            return [self._run_failed(flow_failure(data.error))]
        if data.status == "stopped":
            if self.mode == "workflow" or not self._streamed_text:
                return [self._run_failed(flow_failure(data.error, stopped=True))]
            return self._finish(None)
        out: list[OutputItem] = []
        if self.mode == "workflow":
            for item in data.files or []:
                self._files.add(file_from_object(item, self._files_base))
            for produced in files_in_outputs(data.outputs, self._files_base):
                self._files.add(produced)
            if not self._streamed_text:
                out.extend(self._text(workflow_answer(data.outputs, self.output_variable)))
        usage = None
        if data.total_tokens is not None:
            # Dify reports only a total for workflow runs; it is not split into prompt/completion.
            usage = Usage(
                prompt_tokens=0, completion_tokens=data.total_tokens, total_tokens=data.total_tokens
            )
        if self.mode != "workflow":
            # A chatflow's answer ends at `message_end` (usage, moderation and files come with
            # it), which Dify ≤ 1.12 sends after `workflow_finished`; 1.13.0 sends none and
            # closes, which `finish()` then takes as the end (dify-versions.md §1.5).
            self._flow_finished, self._flow_usage = True, usage
            return out
        out.extend(self._finish(usage))
        return out
