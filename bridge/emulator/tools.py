"""Builtin agent tools the emulator can run (31e: `time/current_time`).

Only tools listed here are emulated; an agent whose first tool is anything else (a workflow
tool as in 46d, a plugin tool) answers like an agent without tools.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class BuiltinTool:
    labels: dict[str, str]  # `tool_labels[<tool name>]` of the agent_thought (31e)
    run: Callable[[dict[str, Any]], str]  # tool parameters → the tool's text result


def _current_time(params: dict[str, Any]) -> str:
    try:
        zone = ZoneInfo(str(params.get("timezone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return datetime.now(zone).strftime(str(params.get("format") or "%Y-%m-%d %H:%M:%S"))


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
    run: Callable[[dict[str, Any]], str]

    @property
    def tool_input(self) -> str:
        """The fake model calls the tool without arguments (31e: `{"current_time": {}}`)."""
        return json.dumps({self.name: {}})

    def observation(self, text: str) -> str:
        return json.dumps({self.name: text}, ensure_ascii=False)


def first_tool(model_config: dict[str, Any]) -> ToolCall | None:
    """The tool the fake model calls on `USETOOL`: the agent's first enabled tool (README)."""
    for tool in (model_config.get("agent_mode") or {}).get("tools") or []:
        if not tool.get("enabled", True):
            continue
        if tool.get("provider_type") != "builtin":
            return None
        builtin = BUILTIN.get((str(tool.get("provider_id")), str(tool.get("tool_name"))))
        if builtin is None:
            return None
        return ToolCall(
            name=str(tool["tool_name"]),
            labels=builtin.labels,
            params=dict(tool.get("tool_parameters") or {}),
            run=builtin.run,
        )
    return None
