"""Load Dify app DSL files (the YAML Dify exports) into what the emulator needs to serve them."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CHAT_MODES = frozenset({"chat", "agent-chat", "advanced-chat"})
GRAPH_MODES = frozenset({"advanced-chat", "workflow"})


@dataclass
class Node:
    id: str
    type: str
    title: str
    data: dict[str, Any]
    parent_id: str | None = None  # set for nodes inside an iteration / loop


@dataclass
class Edge:
    source: str
    target: str
    source_handle: str = "source"


@dataclass
class AppSpec:
    """One Dify app as the emulator serves it."""

    name: str
    mode: str
    description: str
    key: str
    features: dict[str, Any]
    model_config: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    conversation_variables: list[dict[str, Any]] = field(default_factory=list)
    app_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    workflow_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    path: Path | None = None
    icon: str = "🤖"
    icon_background: str = "#FFEAD5"
    use_icon_as_answer_icon: bool = False

    @property
    def is_graph(self) -> bool:
        return self.mode in GRAPH_MODES

    @property
    def start_node(self) -> Node:
        return next(n for n in self.nodes.values() if n.type == "start" and n.parent_id is None)

    @property
    def user_input_form(self) -> list[dict[str, Any]]:
        """`user_input_form`: Start-node variables, or the chat app's own form (14b, 30e)."""
        if not self.is_graph:
            return list(self.model_config.get("user_input_form") or [])
        form = []
        for var in self.start_node.data.get("variables") or []:
            form.append({var.get("type", "text-input"): dict(var)})
        return form

    @property
    def file_upload(self) -> dict[str, Any]:
        source = self.features if self.is_graph else self.model_config
        return dict(source.get("file_upload") or {"enabled": False})

    @property
    def file_upload_enabled(self) -> bool:
        upload = self.file_upload
        return bool(upload.get("enabled") or (upload.get("image") or {}).get("enabled"))

    @property
    def moderation(self) -> dict[str, Any]:
        source = self.features if self.is_graph else self.model_config
        return dict(source.get("sensitive_word_avoidance") or {"enabled": False})


def default_key(app_name: str) -> str:
    """`app-` + the app name lower-cased, every non-alphanumeric run turned into `-`."""
    return "app-" + re.sub(r"[^a-z0-9]", "-", app_name.lower())


def load_app(path: Path, keys: dict[str, str] | None = None) -> AppSpec:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    app = doc.get("app") or {}
    name = str(app.get("name") or path.stem)
    mode = str(app.get("mode") or "workflow")
    key = (keys or {}).get(name) or default_key(name)
    spec = AppSpec(
        name=name,
        mode=mode,
        description=str(app.get("description") or ""),
        key=key,
        features={},
        path=path,
        icon=str(app.get("icon") or "🤖"),
        icon_background=str(app.get("icon_background") or "#FFEAD5"),
        use_icon_as_answer_icon=bool(app.get("use_icon_as_answer_icon")),
    )
    if mode in GRAPH_MODES:
        workflow = doc.get("workflow") or {}
        spec.features = dict(workflow.get("features") or {})
        graph = workflow.get("graph") or {}
        for raw in graph.get("nodes") or []:
            data = dict(raw.get("data") or {})
            if raw.get("type") == "custom-note" or "type" not in data:
                continue
            node = Node(
                id=str(raw["id"]),
                type=str(data["type"]),
                title=str(data.get("title") or data["type"]),
                data=data,
                parent_id=raw.get("parentId") or data.get("iteration_id") or data.get("loop_id"),
            )
            spec.nodes[node.id] = node
        for raw in graph.get("edges") or []:
            spec.edges.append(
                Edge(
                    source=str(raw["source"]),
                    target=str(raw["target"]),
                    source_handle=str(raw.get("sourceHandle") or "source"),
                )
            )
        for var in workflow.get("environment_variables") or []:
            spec.environment[str(var["name"])] = var.get("value")
        spec.conversation_variables = list(workflow.get("conversation_variables") or [])
    else:
        spec.model_config = dict(doc.get("model_config") or {})
    return spec


def load_apps(
    dsl_paths: list[Path] | None = None,
    dsl_dir: Path | None = None,
    keys: dict[str, str] | None = None,
) -> dict[str, AppSpec]:
    """All apps, by API key."""
    paths = list(dsl_paths or [])
    if dsl_dir is not None:
        paths += sorted(p for p in Path(dsl_dir).iterdir() if p.suffix in (".yml", ".yaml"))
    apps: dict[str, AppSpec] = {}
    for path in paths:
        spec = load_app(Path(path), keys)
        apps[spec.key] = spec
    return apps
