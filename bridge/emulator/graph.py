"""Run a chatflow (advanced-chat) or workflow graph and emit Dify's stream events.

Event order follows the recordings:
- `workflow_started`, then per node `node_started` … `node_finished` (01, 05); Iteration and
  Loop nodes run their inner graph with their own events (containers.py, 40, 41).
- Answer text (chatflow `message`, workflow `text_chunk`) is streamed by a response
  coordinator: Answer/End nodes are "sessions" in graph order; the current session emits its
  literal and variable segments as soon as each is available — right after a node starts and
  right before a node finishes — and is closed when its own node starts, which lets the next
  session's leading literal go out early (22a: `"Part B: "` right after `node_started` of answer1).
  A session behind an Iteration/Loop waits until that container completed (40: `"Items: "` only
  after `iteration_completed`; 41 likewise).
- chatflow: `message_end` BEFORE `workflow_finished` (01); failure: failed `node_finished` and
  `workflow_finished` and nothing else (27a); stop: `workflow_finished` `stopped`, the running
  node gets no `node_finished` (23a, 25a). Older releases end differently (the profile's
  `chatflow_ending`, versions.py): ≤1.12 `workflow_finished` first, then `message_end` / the
  `error` / the stopped run's `message_end`; 1.13.0 nothing after `workflow_finished`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

import jinja2.sandbox
import msgspec

from . import http_node, llm
from .containers import CONTAINER_TYPES, run_container
from .dsl import AppSpec, Node
from .moderation import replace_flagged_output, start_node_extras
from .run import Emit, RunContext, Stopped
from .sandbox import CodeError, run_python
from .scope import TOP, NodeFailed, Scope
from .store import new_id, now
from .tool_files import file_markdown, files_in, is_file_value
from .versions import ChatflowEnding
from .wire import (
    ChatflowGraphEvent,
    ErrorEvent,
    MessageEndEvent,
    MessageEvent,
    NodeFinishedData,
    NodeStartedData,
    TextChunkData,
    WorkflowErrorEvent,
    WorkflowFinishedData,
    WorkflowGraphEvent,
    WorkflowStartedData,
)

_VAR = re.compile(r"\{\{#([\w\-]{1,80}(?:\.[\w\-]{1,80}){1,10})#\}\}")
_jinja = jinja2.sandbox.SandboxedEnvironment(autoescape=False)


# --- variables --------------------------------------------------------------------------------


class VariablePool:
    def __init__(self) -> None:
        self._values: dict[tuple[str, str], Any] = {}

    def set(self, node_id: str, name: str, value: Any) -> None:
        self._values[(node_id, name)] = value

    def has(self, selector: list[str]) -> bool:
        return (selector[0], selector[1]) in self._values

    def get(self, selector: list[str], default: Any = None) -> Any:
        value = self._values.get((selector[0], selector[1]), default)
        for part in selector[2:]:
            value = value.get(part) if isinstance(value, dict) else default
        return value


def render_value(value: Any) -> str:
    """How a variable reads inside Answer text: arrays become markdown lists (40)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if is_file_value(value):
        return file_markdown(value)
    if isinstance(value, list) and value and all(is_file_value(v) for v in value):
        return "\n".join(file_markdown(v) for v in value)  # 46a: no list bullets for files
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "\n".join("- " + render_value(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def substitute(template: str, pool: VariablePool) -> str:
    return _VAR.sub(lambda m: render_value(pool.get(m.group(1).split("."))), template)


@dataclass
class Segment:
    text: str | None = None
    selector: list[str] | None = None


def parse_segments(template: str) -> list[Segment]:
    segments: list[Segment] = []
    pos = 0
    for match in _VAR.finditer(template):
        if match.start() > pos:
            segments.append(Segment(text=template[pos : match.start()]))
        segments.append(Segment(selector=match.group(1).split(".")))
        pos = match.end()
    if pos < len(template):
        segments.append(Segment(text=template[pos:]))
    return segments


# --- response coordinator ---------------------------------------------------------------------


class ResponseCoordinator:
    def __init__(
        self,
        sessions: list[tuple[str, list[Segment]]],
        pool: VariablePool,
        out,
        waits_on: dict[str, set[str]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.pool = pool
        self.out = out  # out(text, selector)
        self.cursor = 0
        self.streaming: list[str] | None = None
        # session node → containers / branches upstream of it that have not finished (40, 41)
        self.waits_on = waits_on or {}

    def _current(self) -> tuple[str, list[Segment]] | None:
        return self.sessions[0] if self.sessions else None

    def flush(self, force: bool = False) -> None:
        current = self._current()
        if current is None:
            return
        node_id, segments = current
        if not force and self.waits_on.get(node_id):
            return
        while self.cursor < len(segments):
            seg = segments[self.cursor]
            if seg.text is not None:
                self.out(seg.text, [node_id, "answer"])
            elif seg.selector == self.streaming and (force or self.pool.has(seg.selector)):
                self.streaming = None  # already streamed chunk by chunk (33a)
            elif (
                force
                or self.pool.has(seg.selector or [])
                or (seg.selector or [""])[0]
                in {
                    "sys",
                    "conversation",
                    "env",
                }
            ):
                self.out(render_value(self.pool.get(seg.selector or [])), seg.selector)
            else:
                return
            self.cursor += 1

    def node_started(self, node_id: str) -> None:
        ids = [s[0] for s in self.sessions]
        if node_id in ids:
            while self.sessions and self.sessions[0][0] != node_id:
                self.flush(force=True)
                self._advance()
            self.flush(force=True)
            self._advance()
        self.flush()

    def resolved(self, node_id: str) -> None:
        """A container or branch node has finished: sessions behind it may stream now."""
        for pending in self.waits_on.values():
            pending.discard(node_id)
        self.flush()

    def skip(self, node_id: str) -> None:
        if self.sessions and self.sessions[0][0] == node_id:
            self._advance()
            self.flush()
        else:
            self.sessions = [s for s in self.sessions if s[0] != node_id]

    def _advance(self) -> None:
        self.sessions.pop(0)
        self.cursor = 0
        self.streaming = None

    def stream(self, selector: list[str], chunk: str) -> bool:
        """Pass a chunk of a still-running node straight through if the session waits on it."""
        current = self._current()
        if current is None or self.cursor >= len(current[1]):
            return False
        if current[1][self.cursor].selector != selector:
            return False
        self.streaming = selector
        self.out(chunk, selector)
        return True


# --- the runner -------------------------------------------------------------------------------


class GraphRun:
    def __init__(self, ctx: RunContext, emit: Emit) -> None:
        self.ctx = ctx
        self.app: AppSpec = ctx.app
        self.emit_raw = emit
        self.chatflow = self.app.mode == "advanced-chat"
        self.pool = VariablePool()
        self.run_id = ctx.workflow_run_id or new_id()
        ctx.workflow_run_id = self.run_id
        self.started = time.monotonic()
        self.created_at = now()
        self.answers: list[str] = []  # Answer nodes' rendered texts (outputs.answer)
        self.streamed: list[str] = []  # what the client was sent (the blocking answer, 47c)
        self.answer_files: list[dict[str, Any]] = []
        self.end_outputs: dict[str, Any] = {}
        self.steps = 0
        self.tokens = 0
        self.llm_usage: dict[str, Any] | None = None
        self.first_text_at: float | None = None
        order = self.order()
        kind = "answer" if self.chatflow else "end"
        sessions = []
        waits_on: dict[str, set[str]] = {}
        for node_id in order:
            node = self.app.nodes[node_id]
            if node.type == kind:
                sessions.append((node_id, self._session_segments(node)))
                waits_on[node_id] = {
                    a for a in self._ancestors(node_id) if self.app.nodes[a].type in _HOLDING
                }
        self.coordinator = ResponseCoordinator(sessions, self.pool, self._text_out, waits_on)

    # graph order: a topological walk from Start following edges (branches one after another,
    # as 1.13.2 ran them with one worker, 42/42b); `parent` selects a container's inner graph
    def order(self, parent: str | None = None, start: str | None = None) -> list[str]:
        top = {n.id for n in self.app.nodes.values() if n.parent_id == parent}
        indegree = {n: 0 for n in top}
        for edge in self.app.edges:
            if edge.source in top and edge.target in top:
                indegree[edge.target] += 1
        queue = [start or self.app.start_node.id]
        order: list[str] = []
        while queue:
            node_id = queue.pop(0)
            order.append(node_id)
            for edge in self.app.edges:
                if edge.source == node_id and edge.target in indegree:
                    indegree[edge.target] -= 1
                    if indegree[edge.target] == 0:
                        queue.append(edge.target)
        return order

    def _ancestors(self, node_id: str) -> set[str]:
        found: set[str] = set()
        todo = [node_id]
        while todo:
            current = todo.pop()
            for edge in self.app.edges:
                if edge.target == current and edge.source not in found:
                    found.add(edge.source)
                    todo.append(edge.source)
        return found

    def _session_segments(self, node: Node) -> list[Segment]:
        if node.type == "answer":
            return parse_segments(str(node.data.get("answer") or ""))
        segments: list[Segment] = []
        for i, out in enumerate(node.data.get("outputs") or []):
            if i:
                segments.append(Segment(text="\n"))
            segments.append(Segment(selector=list(out.get("value_selector") or [])))
        return segments

    # --- event envelopes ---

    def graph_event(self, event: str, data: Any) -> None:
        if self.chatflow:
            self.emit_raw(
                ChatflowGraphEvent(
                    event=event,
                    conversation_id=self.ctx.conversation_id,
                    message_id=self.ctx.message_id,
                    created_at=self.ctx.created_at,
                    task_id=self.ctx.task_id,
                    workflow_run_id=self.run_id,
                    data=data,
                )
            )
        else:
            self.emit_raw(
                WorkflowGraphEvent(
                    event=event, workflow_run_id=self.run_id, task_id=self.ctx.task_id, data=data
                )
            )

    def _text_out(self, text: str, selector: list[str] | None) -> None:
        if self.first_text_at is None:
            self.first_text_at = time.monotonic()
        if self.chatflow:
            self.streamed.append(text)
            self.emit_raw(
                MessageEvent(
                    event="message",
                    conversation_id=self.ctx.conversation_id,
                    message_id=self.ctx.message_id,
                    created_at=self.ctx.created_at,
                    task_id=self.ctx.task_id,
                    id=self.ctx.message_id,
                    answer=text,
                    from_variable_selector=selector,
                )
            )
        else:
            self.emit_raw(
                WorkflowGraphEvent(
                    event="text_chunk",
                    workflow_run_id=self.run_id,
                    task_id=self.ctx.task_id,
                    data=TextChunkData(text=text, from_variable_selector=selector),
                )
            )

    # --- system variables ---

    def _sys_inputs(self, for_node: bool) -> dict[str, Any]:
        """`sys.*` as 01/05 show them; the Start node also sees conversation_id / timestamp."""
        ctx = self.ctx
        # Every declared Start variable, in form order, None when not sent (21b: "tone": null).
        declared = [v["variable"] for v in self.app.start_node.data.get("variables") or []]
        values: dict[str, Any] = {name: ctx.inputs.get(name) for name in declared}
        values.update({k: v for k, v in ctx.inputs.items() if k not in values})
        if for_node and self.chatflow:
            values.update(start_node_extras(self.app, ctx.query))
        values["sys.files"] = ctx.files
        values["sys.user_id"] = ctx.user
        values["sys.app_id"] = self.app.app_id
        values["sys.workflow_id"] = self.app.workflow_id
        values["sys.workflow_run_id"] = self.run_id
        if self.chatflow:
            values["sys.query"] = ctx.query
            if for_node:
                values["sys.conversation_id"] = ctx.conversation_id
            values["sys.dialogue_count"] = self._dialogue_count()
        elif for_node:
            values["sys.timestamp"] = self.created_at
        return values

    def _dialogue_count(self) -> int:
        conv = self.ctx.conversation
        return (len(conv.messages) if conv else 0) + 1

    def _fill_pool(self) -> None:
        start = self.app.start_node
        for var in start.data.get("variables") or []:
            name = var["variable"]
            self.pool.set(start.id, name, self.ctx.inputs.get(name))
        for key, value in self._sys_inputs(for_node=True).items():
            if key.startswith("sys."):
                self.pool.set("sys", key[4:], value)
        for name, value in self.app.environment.items():
            self.pool.set("env", name, value)
        conv = self.ctx.conversation
        for var in self.app.conversation_variables:
            name = var["name"]
            value = conv.variables.get(name, var.get("value")) if conv else var.get("value")
            self.pool.set("conversation", name, value)

    # --- main loop ---

    async def run(self) -> None:
        ctx = self.ctx
        if not ctx.settings.profile.loop_nodes and any(
            node.type == "loop" for node in self.app.nodes.values()
        ):
            self._fail_unknown_node("loop")
            return
        self._fill_pool()
        self.graph_event(
            "workflow_started",
            WorkflowStartedData(
                id=self.run_id,
                workflow_id=self.app.workflow_id,
                inputs=self._sys_inputs(for_node=False),
                created_at=self.created_at,
            ),
        )
        status, error = "succeeded", None
        try:
            await self.run_sequence(self.order(), TOP)
        except Stopped:
            status, error = "stopped", "Stopped by user."
        except NodeFailed as exc:
            status, error = "failed", str(exc)
        ctx.status, ctx.error = status, error
        rendered = "".join(self.answers)
        # 47c: a chatflow's blocking answer is assembled from the stream, so it keeps <think>
        # tags that `reasoning_format: separated` removed from the node's variables.
        ctx.answer = "".join(self.streamed) if self.chatflow else rendered
        if self.chatflow:
            # A failed run reports the answer only if an Answer node got to finish: 27a has
            # the partial answer, 34e (LLM failed before any Answer) has `{}`.
            answered = status == "succeeded" or bool(self.answers)
            ctx.outputs = {"answer": rendered, "files": self.answer_files} if answered else {}
        else:
            ctx.outputs = dict(self.end_outputs)
        ctx.elapsed = round(time.monotonic() - self.started, 6)
        ctx.total_tokens, ctx.total_steps = self.tokens, self.steps
        ctx.finished_at = now()
        # What follows the run: message_replace?/message_end of a successful chatflow, and on
        # releases ≤1.12 the `error` of a failed one and the `message_end` of a stopped one.
        ending = ctx.settings.profile.chatflow_ending
        tail: list[msgspec.Struct] = []
        if self.chatflow and status == "succeeded":
            ttft = (self.first_text_at or time.monotonic()) - self.started
            usage = llm.usage(0, 0, ttft, zero=True)
            if self.llm_usage:  # 33a: the model's usage, timed to the run's first text
                usage = {**self.llm_usage, "time_to_first_token": round(ttft, 3)}
            ctx.usage = usage
            # 44d: workflow_finished keeps the unmoderated answer (ctx.outputs above).
            replace_flagged_output(ctx, tail.append)
            tail.append(self._message_end(usage))
        elif self.chatflow and ending is ChatflowEnding.WORKFLOW_FINISHED_FIRST:
            if status == "stopped":  # generate_task_pipeline.py@ca19bd31d:581-583
                ctx.usage = self.llm_usage or llm.blank_usage(0.0)
                tail.append(self._message_end(ctx.usage))
            elif status == "failed":  # :555-557, a ValueError → invalid_param
                tail.append(self._error_event("invalid_param", 400, f"Run failed: {error}"))
        finished = WorkflowFinishedData(
            id=self.run_id,
            workflow_id=self.app.workflow_id,
            status=status,
            outputs=ctx.outputs,
            error=error,
            elapsed_time=ctx.elapsed,
            total_tokens=self.tokens,
            total_steps=self.steps,
            created_by={"id": ctx.end_user_id, "user": ctx.user},
            created_at=self.created_at,
            finished_at=ctx.finished_at,
            # 27a, 34e: the failed node counts as one exception
            exceptions_count=1 if status == "failed" else 0,
            files=files_in(ctx.outputs),
        )
        if ending is ChatflowEnding.MESSAGE_END_FIRST:  # 1.13.1+ (01)
            for event in tail:
                self.emit_raw(event)
            self.graph_event("workflow_finished", finished)
        else:
            self.graph_event("workflow_finished", finished)
            # 1.13.0 closes the relay at workflow_finished: the tail never reaches the client
            if ending is ChatflowEnding.WORKFLOW_FINISHED_FIRST:
                for event in tail:
                    self.emit_raw(event)

    def _fail_unknown_node(self, node_type: str) -> None:
        """Before 1.0.1 the graph cannot even be built with a Loop node (measured on 0.15.3:
        `KeyError: <NodeType.LOOP: 'loop'>`): no workflow events, one `error` event carrying
        the converter's text for an unexpected exception, and a blocking call is a 500."""
        ctx = self.ctx
        ctx.status, ctx.error_code = "error", "internal_server_error"
        ctx.error = f"<NodeType.{node_type.upper()}: '{node_type}'>"
        self.emit_raw(
            self._error_event(
                "internal_server_error", 500, "Internal Server Error, please contact support."
            )
        )

    def _message_end(self, usage: dict[str, Any]) -> MessageEndEvent:
        ctx = self.ctx
        return MessageEndEvent(
            event="message_end",
            conversation_id=ctx.conversation_id,
            message_id=ctx.message_id,
            created_at=ctx.created_at,
            task_id=ctx.task_id,
            id=ctx.message_id,
            metadata=llm.metadata(usage),
            files=files_in(ctx.outputs),
        )

    def _error_event(self, code: str, status: int, message: str) -> msgspec.Struct:
        """The `error` event of a chatflow or workflow stream (converter envelope + code,
        status, message; never a task_id)."""
        if self.chatflow:
            return ErrorEvent(
                event="error",
                conversation_id=self.ctx.conversation_id,
                message_id=self.ctx.message_id,
                created_at=self.ctx.created_at,
                code=code,
                status=status,
                message=message,
            )
        return WorkflowErrorEvent(
            event="error", workflow_run_id=None, code=code, status=status, message=message
        )

    async def run_sequence(self, order: list[str], scope: Scope) -> None:
        """Run nodes in order; a node none of whose incoming edges was taken is skipped.

        Skips are decided as soon as a branch is known (not when the node's turn comes), so an
        Answer behind the branch not taken never streams its literal text.
        """
        branches = _Branches(self.app.edges, order)
        for node_id in order:
            if node_id in branches.dead:
                continue
            node = self.app.nodes[node_id]
            if node.type in CONTAINER_TYPES:
                if scope.top:
                    self.steps += 1  # one step per container, none for its inner nodes (40, 41)
                await run_container(self, node)
                handle = "source"
            else:
                handle = await self._run_node(node, scope)
            newly_dead = branches.mark(node_id, handle)
            if scope.top:
                for dead in newly_dead:
                    self.coordinator.skip(dead)
                self.coordinator.resolved(node_id)

    async def _run_node(self, node: Node, scope: Scope) -> str:
        """Run one node with its events; return the source handle whose edges are taken."""
        ctx = self.ctx
        exec_id = new_id()
        started_at = now()
        t0 = time.monotonic()
        if scope.top:
            self.steps += 1
        self.graph_event(
            "node_started",
            NodeStartedData(
                id=exec_id,
                node_id=node.id,
                node_type=node.type,
                title=node.title,
                index=1,
                predecessor_node_id=None,
                inputs=None,
                inputs_truncated=False,
                created_at=started_at,
                extras={},
                iteration_id=scope.iteration_id,
                loop_id=scope.loop_id,
            ),
        )
        if scope.top:
            self.coordinator.node_started(node.id)
        handle = "source"
        process_data: dict[str, Any] = {}
        metadata = None
        inputs: dict[str, Any] = {}
        try:
            executor = getattr(self, "_exec_" + node.type.replace("-", "_"), None)
            if executor is None:
                raise NodeFailed(f"Node type {node.type!r} is not supported by the emulator.")
            result = await ctx.guard(executor(node))
            inputs, outputs, process_data, handle, metadata = result
            for name, value in outputs.items():
                self.pool.set(node.id, name, value)
            status, error = "succeeded", None
        except NodeFailed as exc:
            outputs, status, error = {}, "failed", str(exc)
            inputs, process_data = exc.inputs, exc.process_data
        if status == "succeeded" and scope.top:
            self.coordinator.flush()
        self.graph_event(
            "node_finished",
            NodeFinishedData(
                id=exec_id,
                node_id=node.id,
                node_type=node.type,
                title=node.title,
                index=1,
                predecessor_node_id=None,
                inputs=inputs,
                inputs_truncated=False,
                process_data=process_data,
                process_data_truncated=False,
                outputs=outputs,
                outputs_truncated=False,
                status=status,
                error=error,
                elapsed_time=round(time.monotonic() - t0, 6),
                execution_metadata=scope.metadata(metadata),
                created_at=started_at,
                finished_at=now(),
                files=files_in(outputs),
                iteration_id=scope.iteration_id,
                loop_id=scope.loop_id,
            ),
        )
        if error is not None:
            raise NodeFailed(error)
        return handle

    # --- node executors: (inputs, outputs, process_data, handle, execution_metadata) ---

    def _selector_inputs(self, node: Node) -> dict[str, Any]:
        return {
            v["variable"]: self.pool.get(list(v.get("value_selector") or ["", ""]))
            for v in node.data.get("variables") or []
        }

    async def _exec_start(self, node: Node):
        values = self._sys_inputs(for_node=True)
        return values, values, {}, "source", None

    async def _exec_code(self, node: Node):
        inputs = self._selector_inputs(node)
        try:
            outputs = await run_python(
                str(node.data.get("code") or ""), inputs, self.ctx.settings.code_timeout
            )
        except CodeError as exc:
            raise NodeFailed(str(exc), inputs=inputs) from None
        return inputs, outputs, {}, "source", None

    async def _exec_template_transform(self, node: Node):
        inputs = self._selector_inputs(node)
        try:
            text = _jinja.from_string(str(node.data.get("template") or "")).render(**inputs)
        except jinja2.TemplateError as exc:
            raise NodeFailed(str(exc)) from None
        return inputs, {"output": text}, {}, "source", None

    async def _exec_answer(self, node: Node):
        template = str(node.data.get("answer") or "")
        text = substitute(template, self.pool)
        self.answers.append(text)
        # 46a: files the answer shows are the node's (and the message's) `files`
        files = [
            f
            for seg in parse_segments(template)
            if seg.selector
            for f in files_in({"v": self.pool.get(seg.selector)})
        ]
        self.answer_files += files
        return {}, {"answer": text, "files": files}, {}, "source", None

    async def _exec_end(self, node: Node):
        outputs = {
            o["variable"]: self.pool.get(list(o.get("value_selector") or ["", ""]))
            for o in node.data.get("outputs") or []
        }
        self.end_outputs = outputs
        return outputs, outputs, {}, "source", None

    async def _exec_assigner(self, node: Node):
        data = node.data
        items = data.get("items")
        if items is None:  # version 1: one assignment
            items = [
                {
                    "variable_selector": data.get("assigned_variable_selector") or [],
                    "input_type": "variable",
                    "operation": data.get("write_mode") or "over-write",
                    "value": data.get("input_variable_selector") or [],
                }
            ]
        process: dict[str, Any] = {}
        updated = []
        for item in items:
            target = list(item.get("variable_selector") or [])
            if len(target) < 2:
                continue
            value = item.get("value")
            if item.get("input_type", "variable") == "variable" and isinstance(value, list):
                value = self.pool.get(value)
            current = self.pool.get(target)
            new = _assign(item.get("operation") or "over-write", current, value)
            self.pool.set(target[0], target[1], new)
            if target[0] == "conversation" and self.ctx.conversation is not None:
                self.ctx.conversation.variables[target[1]] = new
            process[target[1]] = new
            updated.append(
                {
                    "name": target[1],
                    "selector": target,
                    "value_type": _value_type(new),
                    "new_value": new,
                }
            )
        process["__updated_variables"] = updated
        # 22a: this node reports its own configuration as `inputs`.
        inputs = {
            "type": data.get("type"),
            "title": data.get("title"),
            "desc": data.get("desc", ""),
            "version": data.get("version", "1"),
            "error_strategy": None,
            "default_value": None,
            "retry_config": {"max_retries": 0, "retry_interval": 0, "retry_enabled": False},
            "items": items,
        }
        return inputs, {}, process, "source", None

    async def _exec_if_else(self, node: Node):
        cases = node.data.get("cases")
        if cases is None and "conditions" in node.data:
            cases = [
                {
                    "case_id": "true",
                    "logical_operator": node.data.get("logical_operator", "and"),
                    "conditions": node.data["conditions"],
                }
            ]
        for case in cases or []:
            results = [self.condition(c) for c in case.get("conditions") or []]
            ok = all(results) if case.get("logical_operator", "and") == "and" else any(results)
            if ok:
                return (
                    {},
                    {"result": True, "selected_case_id": case["case_id"]},
                    {},
                    case["case_id"],
                    None,
                )
        return {}, {"result": False, "selected_case_id": "false"}, {}, "false", None

    def condition(self, cond: dict[str, Any]) -> bool:
        actual = self.pool.get(list(cond.get("variable_selector") or ["", ""]))
        expected = cond.get("value")
        if isinstance(expected, str):
            expected = substitute(expected, self.pool)
        op = cond.get("comparison_operator")
        text = "" if actual is None else actual
        checks = {
            "contains": lambda: str(expected) in text,
            "not contains": lambda: str(expected) not in text,
            "start with": lambda: str(text).startswith(str(expected)),
            "end with": lambda: str(text).endswith(str(expected)),
            "is": lambda: str(text) == str(expected),
            "is not": lambda: str(text) != str(expected),
            "empty": lambda: not actual,
            "not empty": lambda: bool(actual),
            "=": lambda: float(actual) == float(expected),
            "≠": lambda: float(actual) != float(expected),
            ">": lambda: float(actual) > float(expected),
            "<": lambda: float(actual) < float(expected),
            "≥": lambda: float(actual) >= float(expected),
            "≤": lambda: float(actual) <= float(expected),
            "null": lambda: actual is None,
            "not null": lambda: actual is not None,
        }
        try:
            return bool(checks.get(op, lambda: False)())
        except (TypeError, ValueError):
            return False

    async def _exec_http_request(self, node: Node):
        ctx = self.ctx
        try:
            request = http_node.prepare(node.data, lambda t: substitute(t, self.pool))
            outputs = await http_node.send(
                request, ctx.settings.http_timeout, ctx.store.keep_tool_file, ctx.base_url
            )
        except http_node.HttpNodeError as exc:
            raise NodeFailed(str(exc), process_data=exc.process_data) from None
        return {}, outputs, {"request": request.to_log()}, "source", None

    async def _exec_llm(self, node: Node):
        data = node.data
        prompts = self._llm_prompts(data)
        last_user = next((p["text"] for p in reversed(prompts) if p["role"] == "user"), "")
        selector = [node.id, "text"]
        t0 = time.monotonic()
        first_chunk_at: float | None = None
        chunks: list[str] = []
        try:
            async for chunk in llm.stream_answer(last_user, self.ctx.settings.model):
                if first_chunk_at is None:
                    first_chunk_at = time.monotonic()
                chunks.append(chunk)
                self.coordinator.stream(selector, chunk)
        except llm.ModelError as exc:
            raise NodeFailed(str(exc)) from None
        self.coordinator.stream(selector, "")
        done = time.monotonic()
        text, reasoning = "".join(chunks), ""
        if data.get("reasoning_format") == "separated":
            # 47b: only the node's variables are cleaned; the streamed chunks keep the tags
            text, reasoning = split_think(text)
        model = data.get("model") or {}
        first = first_chunk_at or done
        usage = llm.usage(
            llm.prompt_tokens([p["text"] for p in prompts]),
            len(chunks) - 1,
            round(done - t0, 3),
            time_to_first_token=round(first - t0, 3),
            time_to_generate=round(done - first, 3),
        )
        self.tokens += usage["total_tokens"]
        self.llm_usage = usage
        process = {
            "model_mode": model.get("mode", "chat"),
            "prompts": prompts,
            "usage": usage,
            "finish_reason": "stop",
            "model_provider": model.get("provider", ""),
            "model_name": model.get("name", ""),
        }
        outputs = {
            "text": text,
            "reasoning_content": reasoning,
            "usage": usage,
            "finish_reason": "stop",
        }
        metadata = {
            "total_tokens": usage["total_tokens"],
            "total_price": usage["total_price"],
            "currency": "USD",
        }
        return {}, outputs, process, "source", metadata

    def _llm_prompts(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """The node's prompt messages in Dify's order (33a): the template's messages, then the
        memory window (earlier turns), then the query as the last user message."""
        template = data.get("prompt_template")
        if isinstance(template, dict):  # completion-model template: one text
            template = [{"role": "user", "text": template.get("text")}]
        prompts = [
            _prompt(str(m.get("role", "user")), substitute(str(m.get("text") or ""), self.pool))
            for m in template or []
            if isinstance(m, dict)
        ]
        memory = data.get("memory") if self.chatflow else None
        if not memory:
            return prompts
        window = memory.get("window") or {}
        earlier = self.ctx.conversation.messages if self.ctx.conversation else []
        if window.get("enabled") and window.get("size"):
            earlier = earlier[-int(window["size"]) :]
        for message in earlier:
            prompts += [_prompt("user", message.query), _prompt("assistant", message.answer)]
        query = substitute(str(memory.get("query_prompt_template") or ""), self.pool)
        if query or self.ctx.query:
            prompts.append(_prompt("user", query or self.ctx.query))
        return prompts


def _prompt(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "text": text, "files": []}


_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def split_think(text: str) -> tuple[str, str]:
    """`reasoning_format: separated` (47b): text without <think> blocks, and their contents."""
    reasoning = "\n".join(part.strip() for part in _THINK.findall(text))
    return _THINK.sub("", text), reasoning


# Nodes whose finishing decides what an Answer/End behind them streams: containers hold their
# literal text back (40, 41); for branches the emulator does the same (not recorded).
_HOLDING = CONTAINER_TYPES | {"if-else", "question-classifier"}


class _Branches:
    """Which nodes of one graph level are still reachable, as branch results come in."""

    def __init__(self, edges, order: list[str]) -> None:
        members = set(order)
        self.edges = [e for e in edges if e.source in members and e.target in members]
        self.expected = {n: 0 for n in order}
        for edge in self.edges:
            self.expected[edge.target] += 1
        self.taken: dict[str, list[bool]] = {}
        self.dead: set[str] = set()

    def mark(self, node_id: str, handle: str | None) -> list[str]:
        """Record `node_id`'s outgoing edges (handle None: none taken); return new dead nodes."""
        newly: list[str] = []
        for edge in self.edges:
            if edge.source != node_id:
                continue
            hit = handle is not None and (edge.source_handle == handle or handle == "*")
            seen = self.taken.setdefault(edge.target, [])
            seen.append(hit)
            if len(seen) == self.expected[edge.target] and not any(seen):
                self.dead.add(edge.target)
                newly.append(edge.target)
                newly += self.mark(edge.target, None)
        return newly


def _assign(operation: str, current: Any, value: Any) -> Any:
    if operation in ("over-write", "set"):
        return value
    if operation == "clear":
        return [] if isinstance(current, list) else ("" if isinstance(current, str) else None)
    if operation == "append":
        return [*(current or []), value]
    if operation == "extend":
        return [*(current or []), *(value or [])]
    numeric = {
        "+=": lambda a, b: a + b,
        "-=": lambda a, b: a - b,
        "*=": lambda a, b: a * b,
        "/=": lambda a, b: a / b,
    }
    if operation in numeric:
        return numeric[operation](current or 0, value or 0)
    return value


def _value_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"  # 41: `num += 1` reports value_type "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object"


async def run_graph(ctx: RunContext, emit: Emit) -> None:
    await GraphRun(ctx, emit).run()
