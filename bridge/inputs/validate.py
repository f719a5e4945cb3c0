"""Gather a turn's Dify `inputs` from their sources, then check and coerce them against the
app's `user_input_form` — before Dify sees them.

Why check at all when Dify checks too: a streamed chatflow or workflow with a missing required
input answers 200, one `ping`, then ~300 s of silence (rec. 07b, issue 14); blocking mode shows the
real reasons (07a, 22d, 22e, 32c). The bridge always streams, so it must say it first.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

import msgspec

from bridge.errors import BridgeError, bad_request
from bridge.inputs.parameters import AppParameters, FormField

Source = Literal["body", "metadata", "system", "config"]

_INTEGER = re.compile(r"^[+-]?\d+$")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})
_TEXT_KINDS = frozenset({"text-input", "paragraph"})
# Filled by Dify itself, or file objects the bridge passes through untouched.
_UNCHECKED_KINDS = frozenset({"external_data_tool", "file", "file-list"})


class Sourced(msgspec.Struct, frozen=True):
    """An input value and where the request (or the config) set it."""

    value: Any
    source: Source

    def param(self, name: str) -> str:
        if self.source == "metadata":
            return f"metadata.input.{name}"
        if self.source == "system":
            return "messages"
        return f"inputs.{name}"

    @property
    def origin(self) -> str:
        return {
            "body": "the request's `inputs`",
            "metadata": "the request's metadata",
            "system": "the system message",
            "config": "the model's `inputs:` config",
        }[self.source]


def metadata_inputs(metadata: dict[str, str] | None) -> dict[str, str]:
    """OpenAI `metadata` entries named `input.<variable>` (metadata values are strings)."""
    return {
        key.removeprefix("input."): value
        for key, value in (metadata or {}).items()
        if key.startswith("input.") and len(key) > len("input.")
    }


def collect_inputs(
    *,
    body: dict[str, Any] | None,
    metadata: dict[str, str] | None,
    static: dict[str, Any],
    system_variable: str | None = None,
    system: str | None = None,
) -> dict[str, Sourced]:
    """Merge the sources; a later one wins: config < system message < metadata < body."""
    merged = {name: Sourced(value, "config") for name, value in static.items()}
    if system_variable and system is not None:
        merged[system_variable] = Sourced(system, "system")
    for name, value in metadata_inputs(metadata).items():
        merged[name] = Sourced(value, "metadata")
    for name, value in (body or {}).items():
        merged[name] = Sourced(value, "body")
    return merged


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def missing_inputs_error(fields: list[FormField]) -> BridgeError:
    names = ", ".join(f"`{f.variable}`" for f in fields)
    first = fields[0].variable
    noun = "input" if len(fields) == 1 else "inputs"
    return bad_request(
        f"This Dify app requires the {noun} {names}, which the request does not set. "
        f'Pass it in the request body (`extra_body={{"inputs": {{"{first}": "…"}}}}` with the '
        f'openai SDK), as OpenAI metadata `{{"input.{first}": "…"}}`, or in the model\'s '
        f"`inputs:` config on the bridge.",
        param=f"inputs.{first}",
        code="missing_required_input",
    )


class _Invalid(ValueError):
    pass


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Invalid("must be text")


def _as_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise _Invalid("must be a number")
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text) if _INTEGER.match(text) else float(text)
        except ValueError:
            raise _Invalid(f"must be a number, got {value!r}") from None
    else:
        raise _Invalid("must be a number")
    if isinstance(number, float) and not math.isfinite(number):
        raise _Invalid(f"must be a finite number, got {value!r}")
    return number


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise _Invalid(f"must be true or false, got {value!r}")


def _as_object(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _Invalid("must be a JSON object") from None
    if not isinstance(value, dict):
        raise _Invalid("must be a JSON object")
    return value


def coerce(field: FormField, value: Any) -> Any:
    """One present value → what Dify accepts for the field's control type."""
    kind = field.kind
    if kind in _TEXT_KINDS:
        text = _as_text(value)
        if field.max_length and len(text) > field.max_length:
            raise _Invalid(
                f"is {len(text)} characters long; this app allows at most {field.max_length}"
            )
        return text
    if kind == "select":
        text = _as_text(value)
        if field.options and text not in field.options:
            allowed = ", ".join(f'"{o}"' for o in field.options)
            raise _Invalid(f"must be one of {allowed}, got {text!r}")
        return text
    if kind == "number":
        return _as_number(value)
    if kind == "checkbox":
        return _as_bool(value)
    if kind == "json_object":
        return _as_object(value)
    return value


def validate_inputs(
    values: dict[str, Sourced],
    parameters: AppParameters,
    *,
    provided: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Checked and coerced inputs. `provided`: variables the bridge fills itself (the user's
    message in a workflow/completion app's `query_input`). Unknown variables pass through —
    Dify ignores them, and one model config may serve several apps."""
    missing = [
        f
        for f in parameters.form
        if f.required
        and f.kind != "external_data_tool"
        and f.variable not in provided
        and _blank(values[f.variable].value if f.variable in values else None)
    ]
    if missing:
        raise missing_inputs_error(missing)
    result = {name: sourced.value for name, sourced in values.items()}
    for field in parameters.form:
        sourced = values.get(field.variable)
        if sourced is None or field.kind in _UNCHECKED_KINDS or field.variable in provided:
            continue
        if _blank(sourced.value) and field.kind not in _TEXT_KINDS:
            result.pop(field.variable)  # an empty optional value: Dify applies its default
            continue
        try:
            result[field.variable] = coerce(field, sourced.value)
        except _Invalid as exc:
            raise bad_request(
                f"Input `{field.variable}` (from {sourced.origin}) {exc}.",
                param=sourced.param(field.variable),
                code="invalid_input",
            ) from None
    return result
