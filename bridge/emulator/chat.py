"""chat / agent-chat / completion apps: the fake model's answer as message events (30a, 31a, 32a).

No workflow or node events and no initial ping. A stop ends the stream with an ordinary
`message_end` after the partial answer (35a, 35c); a model error is one `error` event without
`task_id` and nothing after it (34a, 34c, 34d). agent-chat wraps the answer in agent_thought /
agent_message events (agent.py), with one builtin tool call on `USETOOL` (31e).
"""

from __future__ import annotations

import re
import time
from typing import Any

from msgspec import UNSET

from . import llm
from .agent import AgentTrace
from .moderation import replace_flagged_output
from .run import Emit, RunContext, Stopped
from .tool_files import message_file
from .tools import first_tool
from .wire import ErrorEvent, MessageEndEvent, MessageEvent

_PROMPT_VAR = re.compile(r"\{\{([a-zA-Z_][\w]*)\}\}")


def render_pre_prompt(ctx: RunContext) -> str:
    text = str(ctx.app.model_config.get("pre_prompt") or "")
    return _PROMPT_VAR.sub(lambda m: str(ctx.inputs.get(m.group(1)) or ""), text)


def model_input(ctx: RunContext) -> str:
    """What the fake model echoes: the user message. That is the query; a completion app uses
    its top-level `query` when sent (the pre-prompt is then the system prompt: `Echo: BBB` for
    inputs.query=AAA, query=BBB, issue 14 item 4), else its rendered prompt + newline (32a)."""
    if ctx.app.mode == "completion" and not ctx.query:
        return render_pre_prompt(ctx) + "\n"
    return ctx.query


def prompt_texts(ctx: RunContext, user_text: str) -> list[str]:
    """System prompt, earlier turns of the conversation, the user message (30a, 45c)."""
    system = render_pre_prompt(ctx)
    if ctx.app.mode == "completion" and not ctx.query:
        return [user_text]
    history = [
        text
        for message in (ctx.conversation.messages if ctx.conversation else [])
        for text in (message.query, message.answer)
    ]
    return [system, *history, user_text]


async def run_chat_app(ctx: RunContext, emit: Emit) -> None:
    agent = ctx.app.mode == "agent-chat"
    conversation_id: Any = UNSET if ctx.app.mode == "completion" else ctx.conversation_id
    common = {
        "conversation_id": conversation_id,
        "message_id": ctx.message_id,
        "created_at": ctx.created_at,
        "task_id": ctx.task_id,
    }
    trace = AgentTrace(ctx, emit, common) if agent else None

    text_in = model_input(ctx)
    prompt_tokens = llm.prompt_tokens(prompt_texts(ctx, text_in))
    tool = first_tool(ctx.app.model_config, ctx) if trace and "USETOOL" in text_in else None
    if trace is not None and tool is not None:
        # 31e: the fake model calls the tool, then echoes "tool said: <result>".
        text_in = "tool said: " + await trace.tool_round(tool)
        prompt_tokens += llm.count_tokens(text_in) + 1
    t0 = time.monotonic()
    chunks: list[str] = []
    stream = llm.stream_answer(text_in, ctx.settings.model)
    try:
        first = True
        while True:
            try:
                chunk = await ctx.guard(anext(stream))
            except StopAsyncIteration:
                break
            if first and trace is not None:
                trace.open()
            first = False
            chunks.append(chunk)
            if trace is not None:
                trace.message(chunk)
            else:
                emit(
                    MessageEvent(
                        event=ctx.text_event,
                        **common,
                        id=ctx.message_id,
                        answer=chunk,
                        from_variable_selector=None,
                    )
                )
    except llm.ModelError as exc:
        ctx.status, ctx.error, ctx.error_code = "error", str(exc), "completion_request_error"
        emit(
            ErrorEvent(
                event="error",
                conversation_id=conversation_id,
                message_id=ctx.message_id,
                created_at=ctx.created_at,
                code="completion_request_error",
                status=400,
                message=str(exc),
            )
        )
        return
    except Stopped:
        ctx.status = "stopped"
    finally:
        await stream.aclose()
    ctx.answer = "".join(chunks)
    if trace is not None and trace.thoughts and ctx.status != "stopped":
        trace.close(ctx.answer)
    if ctx.status == "stopped":
        usage = llm.stopped_usage(time.monotonic() - t0)  # 35a, 35c
    else:
        usage = llm.usage(prompt_tokens, len([c for c in chunks if c]), time.monotonic() - t0)
    ctx.usage = usage
    replace_flagged_output(ctx, emit)  # 44b
    emit(
        MessageEndEvent(
            event="message_end",
            **common,
            id=ctx.message_id,
            metadata=llm.metadata(usage),
            files=trace.end_files() if trace is not None else None,
        )
    )
    if trace is not None:
        ctx.outputs["agent_thoughts"] = trace.thoughts
        ctx.outputs["message_files"] = [
            message_file(file, message_file_id) for message_file_id, file in trace.sent_files
        ]
