"""Iteration and Loop nodes: run their inner graph round by round with Dify's container events.

Facts from the recordings:
- The container node itself gets no `node_started`/`node_finished` (40, 41); `data.id` of its
  events is the node id.
- Iteration (40): `iteration_started` (metadata.iteration_length, inputs.iterator_selector =
  the items) → per item `iteration_next` (index 0…n-1) *before* that round's inner nodes →
  `iteration_completed` (outputs.output, steps = rounds, iteration_duration_map).
- Loop (41): `loop_started` (metadata.loop_length = loop_count, inputs = loop_count + loop
  variables) → round 1 → `loop_next` (index 1, 2 … only between rounds, pre_loop_output {}) →
  `loop_completed` (outputs = loop variables + loop_round, completed_reason "loop_break",
  steps = loop_count although fewer rounds ran).
- Inner nodes carry iteration_id / loop_id and their round in execution_metadata (Scope).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from .dsl import Node
from .scope import NodeFailed, Scope
from .store import now
from .wire import ContainerCompletedData, ContainerStartedData, IterationNextData, LoopNextData

if TYPE_CHECKING:
    from .graph import GraphRun

CONTAINER_TYPES = frozenset({"iteration", "loop"})


async def run_container(run: GraphRun, node: Node) -> None:
    if node.type == "iteration":
        await _run_iteration(run, node)
    else:
        await _run_loop(run, node)


def _started(node: Node, metadata: dict[str, Any], inputs: dict[str, Any]) -> ContainerStartedData:
    return ContainerStartedData(
        id=node.id,
        node_id=node.id,
        node_type=node.type,
        title=node.title,
        created_at=now(),
        extras={},
        metadata=metadata,
        inputs=inputs,
    )


def _completed(
    node: Node,
    *,
    outputs: dict[str, Any],
    inputs: dict[str, Any],
    error: str | None,
    elapsed: float,
    tokens: int,
    metadata: dict[str, Any],
    steps: int,
) -> ContainerCompletedData:
    return ContainerCompletedData(
        id=node.id,
        node_id=node.id,
        node_type=node.type,
        title=node.title,
        outputs=outputs,
        outputs_truncated=False,
        created_at=now(),
        extras={},
        inputs=inputs,
        inputs_truncated=False,
        status="failed" if error else "succeeded",
        error=error,
        elapsed_time=elapsed,
        total_tokens=tokens,
        execution_metadata={
            "total_tokens": tokens,
            "total_price": "0.0",
            "currency": "USD",
            **metadata,
        },
        finished_at=now(),
        steps=steps,
    )


def _inner_order(run: GraphRun, node: Node) -> list[str]:
    start = str(node.data.get("start_node_id") or "")
    # The iteration-start / loop-start marker produces no events (40, 41).
    return [n for n in run.order(parent=node.id, start=start) if n != start]


async def _run_iteration(run: GraphRun, node: Node) -> None:
    data = node.data
    t0 = time.monotonic()
    tokens0 = run.tokens
    items = run.pool.get(list(data.get("iterator_selector") or ["", ""]))
    items = list(items) if isinstance(items, list | tuple) else ([] if items is None else [items])
    inputs = {"iterator_selector": items}
    run.graph_event("iteration_started", _started(node, {"iteration_length": len(items)}, inputs))
    order = _inner_order(run, node)
    output_selector = list(data.get("output_selector") or ["", ""])
    mode = data.get("error_handle_mode") or "terminated"
    outputs: list[Any] = []
    durations: dict[str, float] = {}
    error = None
    for index, item in enumerate(items):
        run.graph_event(
            "iteration_next",
            IterationNextData(
                id=node.id,
                node_id=node.id,
                node_type=node.type,
                title=node.title,
                index=index,
                created_at=now(),
                extras={},
            ),
        )
        r0 = time.monotonic()
        run.pool.set(node.id, "item", item)
        run.pool.set(node.id, "index", index)
        try:
            await run.run_sequence(order, Scope("iteration", node.id, index))
            outputs.append(run.pool.get(output_selector))
        except NodeFailed as exc:
            if mode == "continue-on-error":
                outputs.append(None)
            elif mode != "remove-abnormal-output":
                error = str(exc)
                break
        finally:
            durations[str(index)] = round(time.monotonic() - r0, 6)
    if data.get("flatten_output", True) and outputs and all(isinstance(o, list) for o in outputs):
        outputs = [x for o in outputs for x in o]
    result = {"output": outputs}
    run.graph_event(
        "iteration_completed",
        _completed(
            node,
            outputs=result,
            inputs=inputs,
            error=error,
            elapsed=round(time.monotonic() - t0, 6),
            tokens=run.tokens - tokens0,
            metadata={"iteration_duration_map": durations},
            steps=len(items),
        ),
    )
    if error is not None:
        raise NodeFailed(error)
    run.pool.set(node.id, "output", outputs)


def _loop_value(var: dict[str, Any], run: GraphRun) -> Any:
    value = var.get("value")
    if var.get("value_type") == "variable":
        return run.pool.get(list(value or ["", ""]))
    kind = var.get("var_type") or "string"
    if not isinstance(value, str):
        return value
    try:
        if kind == "number":
            number = float(value)
            return int(number) if number.is_integer() and "." not in value else number
        if kind == "boolean":
            return value.strip().lower() in ("true", "1")
        if kind.startswith(("object", "array")):
            return json.loads(value) if value.strip() else None
    except ValueError:
        return value
    return value


def _should_break(run: GraphRun, node: Node) -> bool:
    conditions = node.data.get("break_conditions") or []
    if not conditions:
        return False
    results = [run.condition(c) for c in conditions]
    return all(results) if node.data.get("logical_operator", "and") == "and" else any(results)


async def _run_loop(run: GraphRun, node: Node) -> None:
    data = node.data
    t0 = time.monotonic()
    tokens0 = run.tokens
    count = int(data.get("loop_count") or 0)
    labels = []
    for var in data.get("loop_variables") or []:
        labels.append(str(var.get("label")))
        run.pool.set(node.id, labels[-1], _loop_value(var, run))
    inputs = {"loop_count": count, **{name: run.pool.get([node.id, name]) for name in labels}}
    run.graph_event("loop_started", _started(node, {"loop_length": count}, inputs))
    order = _inner_order(run, node)
    durations: dict[str, float] = {}
    variable_map: dict[str, dict[str, Any]] = {}
    rounds, error = 0, None
    # Recorded: "loop_break" when a break condition ended it (41). "loop_completed" for an
    # exhausted loop_count is the emulator's own label; no recording shows that case.
    reason = "loop_completed"
    if _should_break(run, node):
        reason, count_left = "loop_break", 0
    else:
        count_left = count
    for index in range(count_left):
        if index:
            run.graph_event(
                "loop_next",
                LoopNextData(
                    id=node.id,
                    node_id=node.id,
                    node_type=node.type,
                    title=node.title,
                    index=index,
                    created_at=now(),
                    pre_loop_output={},
                    extras={},
                ),
            )
        r0 = time.monotonic()
        try:
            await run.run_sequence(order, Scope("loop", node.id, index))
        except NodeFailed as exc:
            error = str(exc)
            break
        finally:
            durations[str(index)] = round(time.monotonic() - r0, 6)
        rounds += 1
        variable_map[str(index)] = {name: run.pool.get([node.id, name]) for name in labels}
        if _should_break(run, node):
            reason = "loop_break"
            break
    outputs = {name: run.pool.get([node.id, name]) for name in labels}
    outputs["loop_round"] = rounds
    metadata: dict[str, Any] = {"completed_reason": reason} if error is None else {}
    metadata["loop_duration_map"] = durations
    metadata["loop_variable_map"] = variable_map
    run.graph_event(
        "loop_completed",
        _completed(
            node,
            outputs=outputs,
            inputs=inputs,
            error=error,
            elapsed=round(time.monotonic() - t0, 6),
            tokens=run.tokens - tokens0,
            metadata=metadata,
            steps=count,  # 41: the configured maximum, not the rounds run
        ),
    )
    if error is not None:
        raise NodeFailed(error)
    run.pool.set(node.id, "loop_round", rounds)
