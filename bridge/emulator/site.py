"""`/v1/site` (16b) and `/v1/meta` (16) bodies, from the app's DSL."""

from __future__ import annotations

from typing import Any

from .dsl import AppSpec


def site_of(app: AppSpec) -> dict[str, Any]:
    """The app's web-app site as the Service API shows it; keys in 16b's order."""
    return {
        "title": app.name,
        "chat_color_theme": None,
        "chat_color_theme_inverted": False,
        "icon_type": "emoji",
        "icon": app.icon,
        "icon_background": app.icon_background,
        "description": None,
        "copyright": None,
        "privacy_policy": None,
        "custom_disclaimer": "",
        "default_language": "en-US",
        "show_workflow_steps": True,
        "use_icon_as_answer_icon": app.use_icon_as_answer_icon,
        "icon_url": None,
    }


def tool_icons(app: AppSpec, console_url: str) -> dict[str, Any]:
    """`tool_icons`: a builtin tool's icon is a console URL by provider (Dify's app meta); API
    tools keep their own icon in Dify's database, so the emulator shows Dify's fallback one."""
    if app.is_graph:
        tools = [n.data for n in app.nodes.values() if n.type == "tool"]
    else:
        tools = list((app.model_config.get("agent_mode") or {}).get("tools") or [])
    icons: dict[str, Any] = {}
    for tool in tools:
        if len(tool) < 4:  # an old-style tool entry: Dify lists no icon for it
            continue
        name = str(tool.get("tool_name") or "")
        kind = tool.get("provider_type")
        if kind == "builtin":
            icons[name] = (
                f"{console_url}/console/api/workspaces/current/tool-provider/builtin/"
                f"{tool.get('provider_id')}/icon"
            )
        elif kind == "api":
            icons[name] = {"background": "#252525", "content": "\U0001f601"}
    return icons
