"""Content moderation (`sensitive_word_avoidance`, type `keywords`) as recordings 44a–44g show it.

- Matching: case-insensitive substring of any keyword (one per line) in the query or any input
  value (input check), or in the answer (output check).
- Input blocked: the model/graph never runs. A chat app streams the preset response one
  character per `message` event, then `message_end` with zero usage (44a); a chatflow sends the
  whole preset in one `message` (`from_variable_selector` null) and `message_end`, no workflow
  events, and the stream then stays open, silent, until the idle timeout (44c; blocking 44g
  answers at once).
- Output flagged: the answer streams unchanged, then `message_replace` with the preset arrives
  just before `message_end` (`reason` "" in a chat app 44b, "output_moderation" in a chatflow
  44d); the stored answer is the preset (44e, 44f).
Other moderation types (OpenAI moderation, API extensions) are not emulated: treated as off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from msgspec import UNSET

from . import llm
from .dsl import AppSpec
from .run import Emit, RunContext
from .wire import MessageEndEvent, MessageEvent, MessageReplaceEvent


@dataclass(frozen=True)
class KeywordModeration:
    keywords: tuple[str, ...]
    input_preset: str | None  # None: the input check is off
    output_preset: str | None

    def blocks_input(self, query: str, inputs: dict[str, Any]) -> str | None:
        if self.input_preset is None:
            return None
        texts = [query, *(str(v) for v in inputs.values() if v is not None)]
        return self.input_preset if any(self._hit(t) for t in texts) else None

    def flags_output(self, answer: str) -> str | None:
        if self.output_preset is None or not self._hit(answer):
            return None
        return self.output_preset

    def _hit(self, text: str) -> bool:
        lowered = text.lower()
        return any(k in lowered for k in self.keywords)


def moderation_of(app: AppSpec) -> KeywordModeration | None:
    feature = app.moderation
    # Only apps that answer messages have the feature (44*: chat and advanced-chat).
    if app.mode == "workflow":
        return None
    if not feature.get("enabled") or feature.get("type") != "keywords":
        return None
    config = feature.get("config") or {}
    keywords = tuple(
        k.strip().lower() for k in str(config.get("keywords") or "").splitlines() if k.strip()
    )

    def preset(name: str) -> str | None:
        part = config.get(name) or {}
        return str(part.get("preset_response") or "") if part.get("enabled") else None

    return KeywordModeration(keywords, preset("inputs_config"), preset("outputs_config"))


def start_node_extras(app: AppSpec, query: str) -> dict[str, Any]:
    """44d: with moderation on, a chatflow Start node's inputs also show `query__`."""
    return {"query__": query} if moderation_of(app) is not None else {}


def _common(ctx: RunContext) -> dict[str, Any]:
    return {
        "conversation_id": UNSET if ctx.app.mode == "completion" else ctx.conversation_id,
        "message_id": ctx.message_id,
        "created_at": ctx.created_at,
        "task_id": ctx.task_id,
    }


def answer_blocked_input(ctx: RunContext, emit: Emit, preset: str) -> None:
    """Stand in for the whole run when the input check hit (44a, 44c, 44g)."""
    t0 = time.monotonic()
    common = _common(ctx)
    graph = ctx.app.is_graph
    # chat app: one character per event (44a); chatflow: the whole text at once (44c)
    pieces = [preset] if graph else list(preset)
    for piece in pieces:
        emit(
            MessageEvent(
                event=ctx.text_event,
                **common,
                id=ctx.message_id,
                answer=piece,
                from_variable_selector=None,
            )
        )
    if graph:
        usage = llm.usage(0, 0, time.monotonic() - t0, zero=True)
    else:
        usage = llm.blank_usage(latency=time.monotonic() - t0)
    ctx.answer, ctx.usage = preset, usage
    emit(
        MessageEndEvent(
            event="message_end",
            **common,
            id=ctx.message_id,
            metadata=llm.metadata(usage),
            files=[] if graph else None,
        )
    )
    # 44c: the chatflow relay waits for a workflow end that never comes.
    ctx.hold_open = graph


def replace_flagged_output(ctx: RunContext, emit: Emit) -> None:
    """Before `message_end`: swap a flagged answer for the preset (44b, 44d)."""
    moderation = moderation_of(ctx.app)
    preset = moderation.flags_output(ctx.answer) if moderation else None
    if preset is None:
        return
    ctx.answer = preset
    emit(
        MessageReplaceEvent(
            event="message_replace",
            **_common(ctx),
            answer=preset,
            reason="output_moderation" if ctx.app.is_graph else "",
        )
    )
