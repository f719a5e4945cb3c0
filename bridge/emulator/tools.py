"""Tools the fake agent model can call on `USETOOL` (README: it calls the agent's first tool).

- builtin `time/current_time` (31e), run in-process;
- a workflow tool (46d): one of the loaded workflow apps, named by `EmulatorConfig.workflow_tools`
  (Dify keeps the tool → workflow binding in its database, not in the agent's DSL). Its outputs
  come back as JSON text, and each file it produced is sent to the user (46d: "image has been
  created and sent to user already, …").
Any other tool (plugin, API tools, an unmapped workflow tool) is not emulated: the agent then
answers like an agent without tools.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .tool_files import files_in, is_file_value

if TYPE_CHECKING:
    from .run import RunContext

FILE_SENT = (
    "image has been created and sent to user already, you do not need to create it, "
    "just tell the user to check it now."
)


class ToolFailed(Exception):
    """The tool call ended in an error; its text is the observation."""


@dataclass(frozen=True)
class ToolResult:
    text: str  # what the model sees
    files: list[dict[str, Any]] = field(default_factory=list)  # File values sent to the user


def _current_time(params: dict[str, Any]) -> str:
    try:
        zone = ZoneInfo(str(params.get("timezone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return datetime.now(zone).strftime(str(params.get("format") or "%Y-%m-%d %H:%M:%S"))


@dataclass(frozen=True)
class BuiltinTool:
    labels: dict[str, str]  # `tool_labels[<tool name>]` of the agent_thought (31e)
    run: Callable[[dict[str, Any]], str]  # tool parameters → the tool's text result


BUILTIN: dict[tuple[str, str], BuiltinTool] = {
    ("time", "current_time"): BuiltinTool(
        labels={
            "zh_Hans": "获取当前时间",
            "en_US": "Current Time",
            "pt_BR": "Current Time",
            "ja_JP": "Current Time",
        },
        run=_current_time,
    ),
}


@dataclass(frozen=True)
class ToolCall:
    name: str
    labels: dict[str, str]
    params: dict[str, Any]
    invoke: Callable[[dict[str, Any]], Awaitable[ToolResult]]

    @property
    def tool_input(self) -> str:
        """The fake model calls the tool without arguments (31e: `{"current_time": {}}`)."""
        return json.dumps({self.name: {}})

    def observation(self, text: str) -> str:
        return json.dumps({self.name: text}, ensure_ascii=False)


def first_tool(model_config: dict[str, Any], ctx: RunContext) -> ToolCall | None:
    """The tool the fake model calls on `USETOOL`: the agent's first enabled tool (README)."""
    for tool in (model_config.get("agent_mode") or {}).get("tools") or []:
        if not tool.get("enabled", True):
            continue
        name = str(tool.get("tool_name"))
        params = dict(tool.get("tool_parameters") or {})
        kind = tool.get("provider_type")
        if kind == "builtin":
            builtin = BUILTIN.get((str(tool.get("provider_id")), name))
            if builtin is None:
                return None

            async def run_builtin(p: dict[str, Any], tool: BuiltinTool = builtin) -> ToolResult:
                return ToolResult(tool.run(p))

            return ToolCall(name, builtin.labels, params, run_builtin)
        if kind == "workflow" and name in ctx.settings.workflow_tools:

            async def run_workflow(p: dict[str, Any], tool_name: str = name) -> ToolResult:
                return await _run_workflow_tool(ctx, tool_name, p)

            # 46d: a workflow tool's label is its name in every language
            return ToolCall(name, {"en_US": name, "zh_Hans": name}, params, run_workflow)
        return None
    return None


async def _run_workflow_tool(ctx: RunContext, name: str, params: dict[str, Any]) -> ToolResult:
    from .graph import run_graph  # graph → … → tools would be a cycle at import time
    from .run import RunContext
    from .store import new_id, now

    run = RunContext(
        app=ctx.settings.workflow_tools[name],
        store=ctx.store,
        settings=ctx.settings,
        user=ctx.user,
        end_user_id=ctx.end_user_id,
        task_id=new_id(),
        message_id=new_id(),
        created_at=now(),
        inputs=params,
        base_url=ctx.base_url,
    )
    await ctx.guard(run_graph(run, lambda _event: None))
    if run.status != "succeeded":
        raise ToolFailed(str(run.error))
    files = files_in(run.outputs)
    # 46d: the text result lists each file with its tool_file_id added
    shown = {
        key: [_with_tool_file_id(v) for v in value] if isinstance(value, list) else value
        for key, value in run.outputs.items()
    }
    return ToolResult(FILE_SENT * len(files) + json.dumps(shown), files)


def _with_tool_file_id(value: Any) -> Any:
    return {**value, "tool_file_id": value["related_id"]} if is_file_value(value) else value
