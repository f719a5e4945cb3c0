"""Field-level differences of older Dify releases, applied to the 1.13.2 events the emulator makes.

The pipelines build every event as Dify 1.13.2 serialises it (wire.py, checked against the
recordings). For another profile, `event_encoder` rewrites each event's fields on the way out
(dify-versions.md §1.4, §3): the default profile bypasses all of this, so 1.13.2 streams stay
byte-identical. Differences in *which* events are sent and in what order are the pipelines' job
(graph.py, chat.py, generation_routes.py); only per-field drift lives here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec

from .versions import DifyProfile
from .wire import sse_frame, to_builtins

_encoder = msgspec.json.Encoder()

_NODE_EVENTS = {"node_started", "node_finished", "node_retry"}
_TRUNCATION_FLAGS = ("inputs_truncated", "process_data_truncated", "outputs_truncated")
# ≤1.8.x node data ended with these (task_entities.py before 85cda47c7), in this order.
_PARALLEL_IDS = (
    "parallel_id",
    "parallel_start_node_id",
    "parent_parallel_id",
    "parent_parallel_start_node_id",
)


def event_encoder(
    profile: DifyProfile, sequence_number: int | None = None
) -> Callable[[msgspec.Struct], bytes]:
    """SSE frame writer for `profile`; `sequence_number`: the workflow run's number (≤1.4.1)."""
    if profile.is_default:
        return sse_frame

    def encode(event: msgspec.Struct) -> bytes:
        data = adapt_event(profile, to_builtins(event), sequence_number)
        if profile.sse_ascii_json:
            # ≤1.8.0 wrote `json.dumps(chunk)`: ", " / ": " separators and \\uXXXX escapes.
            return b"data: " + json.dumps(data).encode() + b"\n\n"
        return b"data: " + _encoder.encode(data) + b"\n\n"

    return encode


def adapt_event(
    profile: DifyProfile, event: dict[str, Any], sequence_number: int | None = None
) -> dict[str, Any]:
    name = event.get("event")
    data = event.get("data")
    if name in ("workflow_started", "workflow_finished") and isinstance(data, dict):
        if not profile.workflow_started_reason:
            data.pop("reason", None)
        if profile.sequence_number:
            number = sequence_number or 1
            event["data"] = _insert_after(data, "workflow_id", "sequence_number", number)
    elif name in _NODE_EVENTS and isinstance(data, dict):
        event["data"] = _node_data(profile, name, data)
    elif name == "message_replace" and not profile.replace_reason:
        event.pop("reason", None)
    elif name == "message_end" and isinstance(event.get("metadata"), dict):
        event["metadata"] = adapt_metadata(profile, event["metadata"])
    if not profile.usage_timing_keys:
        _strip_usage_timing(event)
    return event


def adapt_metadata(profile: DifyProfile, metadata: dict[str, Any]) -> dict[str, Any]:
    """`message_end.metadata` / a blocking answer's `metadata` (§2.3: ≤1.4.1 only set keys)."""
    if not profile.metadata_keys_always:
        metadata = {k: v for k, v in metadata.items() if v not in (None, [], {})}
    if not profile.usage_timing_keys:
        _strip_usage_timing(metadata)
    return metadata


def _node_data(profile: DifyProfile, name: str, data: dict[str, Any]) -> dict[str, Any]:
    if not profile.node_parallel_fields:
        if not profile.agent_strategy_field:
            data.pop("agent_strategy", None)
        return data
    tail = ("iteration_id", "loop_id", "agent_strategy", *_TRUNCATION_FLAGS)
    out = {k: v for k, v in data.items() if k not in tail}
    for key in _PARALLEL_IDS:
        out[key] = None  # the emulator runs branches one after another (docs/emulator.md)
    out["iteration_id"] = data.get("iteration_id")
    if profile.loop_nodes:
        out["loop_id"] = data.get("loop_id")
    if name == "node_started":
        out["parallel_run_id"] = None
        if profile.agent_strategy_field:
            out["agent_strategy"] = data.get("agent_strategy")
    return out


def _insert_after(data: dict[str, Any], anchor: str, key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        out[k] = v
        if k == anchor:
            out[key] = value
    return out


def _strip_usage_timing(value: Any) -> None:
    """Usage gained time_to_first_token / time_to_generate in 1.10.0 (§1.7)."""
    if isinstance(value, dict):
        if "prompt_tokens" in value and "total_price" in value:
            value.pop("time_to_first_token", None)
            value.pop("time_to_generate", None)
        for item in value.values():
            _strip_usage_timing(item)
    elif isinstance(value, list):
        for item in value:
            _strip_usage_timing(item)
