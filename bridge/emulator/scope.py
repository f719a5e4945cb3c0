"""Where a node runs: at the top of the graph or inside one round of an Iteration / Loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class NodeFailed(Exception):
    """A node ended with status `failed`; its error text becomes the run's error (27a).

    `inputs` / `process_data`: what the failed node_finished still reports (27a keeps the Code
    node's inputs; a failed HTTP Request keeps its request log).
    """

    def __init__(
        self,
        message: str,
        inputs: dict[str, Any] | None = None,
        process_data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.inputs = inputs or {}
        self.process_data = process_data or {}


@dataclass(frozen=True)
class Scope:
    kind: str = ""  # "" (top level), "iteration" or "loop"
    container_id: str | None = None
    index: int = 0

    @property
    def top(self) -> bool:
        return self.container_id is None

    @property
    def iteration_id(self) -> str | None:
        return self.container_id if self.kind == "iteration" else None

    @property
    def loop_id(self) -> str | None:
        return self.container_id if self.kind == "loop" else None

    def metadata(self, own: dict[str, Any] | None) -> dict[str, Any] | None:
        """Inner nodes' `execution_metadata` names their container and round (40, 41)."""
        if self.top:
            return own
        extra = {f"{self.kind}_id": self.container_id, f"{self.kind}_index": self.index}
        return {**(own or {}), **extra}


TOP = Scope()
