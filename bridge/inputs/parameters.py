"""An app's `GET /parameters`, typed, and a per-app cache of it.

Only what the bridge uses is decoded: the input form, the file-upload feature and the size
limits. Both body shapes Dify sends are understood: 1.x's top-level `file_upload.enabled` /
`allowed_*` (rec. 14c, 30e) and the older `file_upload.image` block (still sent next to it,
rec. 14a, 14b).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import structlog

from bridge.dify.client import DifyAPIError, DifyClient, DifyTarget, DifyTimeout, DifyUnreachable

log = structlog.get_logger("bridge.inputs")

MB = 1024 * 1024  # Dify multiplies its `*_file_size_limit` settings by 1024 * 1024
# A failed fetch is retried after this long (not the full TTL): Dify may just be restarting.
FAILURE_TTL = 30.0
# `/parameters` is a cheap read; do not let a stuck Dify hold a chat request for read_timeout.
FETCH_TIMEOUT = 15.0


class FormField(msgspec.Struct, kw_only=True):
    """One `user_input_form` entry: `{"<control type>": {variable, required, …}}`."""

    kind: str  # text-input, paragraph, select, number, checkbox, file, file-list, json_object…
    variable: str
    label: str = ""
    required: bool = False
    max_length: int | None = None
    options: list[str] = msgspec.field(default_factory=list)


class _FieldSpec(msgspec.Struct, kw_only=True):
    # Loosely typed: DSLs edited by hand carry "", "48" or null here, and one odd field must
    # not cost the whole form.
    variable: str
    label: Any = None
    required: Any = None
    max_length: Any = None
    options: Any = None


def _positive_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


class ImageUpload(msgspec.Struct, kw_only=True):
    enabled: bool = False
    number_limits: int | None = None
    transfer_methods: list[str] | None = None


class FileUpload(msgspec.Struct, kw_only=True):
    enabled: bool | None = None
    allowed_file_types: list[str] | None = None
    allowed_file_extensions: list[str] | None = None
    allowed_file_upload_methods: list[str] | None = None
    number_limits: int | None = None
    image: ImageUpload | None = None

    @property
    def accepts_files(self) -> bool:
        # Dify 1.x reads only the top-level switch; the `image` block decides on old releases
        # that do not send one. Disabled apps drop `files` without a word (rec. 20a, 21a).
        if self.enabled is not None:
            return self.enabled
        return bool(self.image and self.image.enabled)

    @property
    def file_types(self) -> list[str]:
        """Allowed Dify file types; empty means any (Dify skips the check then)."""
        if self.allowed_file_types:
            return self.allowed_file_types
        return ["image"] if self.enabled is None and self.image else []

    @property
    def transfer_methods(self) -> list[str]:
        """`local_file` / `remote_url`; empty means both."""
        if self.allowed_file_upload_methods:
            return self.allowed_file_upload_methods
        return (self.image.transfer_methods or []) if self.image else []

    @property
    def extensions(self) -> set[str]:
        """Allowed extensions, lower-case without the dot (Dify lists `.PNG`, rec. 14c)."""
        return {e.strip().lstrip(".").lower() for e in self.allowed_file_extensions or [] if e}

    @property
    def max_files(self) -> int | None:
        if self.number_limits:
            return self.number_limits
        return self.image.number_limits if self.image and self.image.number_limits else None


class SystemParameters(msgspec.Struct, kw_only=True):
    """Upload size limits in MB; the defaults are Dify's own (used when a field is missing)."""

    image_file_size_limit: float = 10
    video_file_size_limit: float = 100
    audio_file_size_limit: float = 50
    file_size_limit: float = 15
    workflow_file_upload_limit: int = 10

    def max_bytes(self, file_type: str) -> int:
        limit = {
            "image": self.image_file_size_limit,
            "video": self.video_file_size_limit,
            "audio": self.audio_file_size_limit,
        }.get(file_type, self.file_size_limit)
        return int(limit * MB)


class _RawParameters(msgspec.Struct, kw_only=True):
    user_input_form: list[dict[str, Any]] | None = None
    sensitive_word_avoidance: dict[str, Any] | None = None
    file_upload: FileUpload | None = None
    system_parameters: SystemParameters | None = None


class AppParameters(msgspec.Struct, kw_only=True):
    form: list[FormField]
    file_upload: FileUpload
    limits: SystemParameters
    # Output moderation (rec. 44b/44d); None when the app's feature config does not say.
    moderates_output: bool | None = None

    def field(self, variable: str) -> FormField | None:
        return next((f for f in self.form if f.variable == variable), None)


def parse_parameters(body: Any) -> AppParameters:
    """A `/parameters` body (already JSON-decoded) → `AppParameters`.

    Raises `msgspec.ValidationError` when the body is not the shape Dify sends.
    """
    raw = msgspec.convert(body, _RawParameters, strict=False)
    form = []
    for item in raw.user_input_form or []:
        if not isinstance(item, dict) or len(item) != 1:
            continue
        ((kind, spec),) = item.items()
        if not isinstance(spec, dict) or not spec.get("variable"):
            continue
        parsed = msgspec.convert(spec, _FieldSpec, strict=False)
        options = parsed.options if isinstance(parsed.options, list) else []
        form.append(
            FormField(
                kind=str(kind),
                variable=parsed.variable,
                label=str(parsed.label or parsed.variable),
                required=_flag(parsed.required),
                max_length=_positive_int(parsed.max_length),
                options=[str(o) for o in options],
            )
        )
    return AppParameters(
        form=form,
        file_upload=raw.file_upload or FileUpload(enabled=False),
        limits=raw.system_parameters or SystemParameters(),
        moderates_output=_output_moderation(raw.sensitive_word_avoidance),
    )


def _output_moderation(feature: dict[str, Any] | None) -> bool | None:
    """`sensitive_word_avoidance` as `/parameters` shows it: is the answer checked?"""
    if not isinstance(feature, dict) or "enabled" not in feature:
        return None
    if not feature["enabled"]:
        return False
    outputs = (feature.get("config") or {}).get("outputs_config")
    if isinstance(outputs, dict) and "enabled" in outputs:
        return bool(outputs["enabled"])
    return True


class ParametersCache:
    """`GET /parameters` per app, reused for `ttl` seconds; concurrent misses share one fetch.

    `get()` returns None when the parameters cannot be had (an old Dify without the endpoint,
    a network failure, an unexpected body): callers then skip validation, never fail a chat.
    """

    def __init__(self, dify: DifyClient, ttl: float) -> None:
        self._dify = dify
        self._ttl = ttl
        self._entries: dict[str, tuple[float, asyncio.Task[AppParameters | None]]] = {}

    async def get(self, target: DifyTarget) -> AppParameters | None:
        key = target.identity
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now:
            task = asyncio.ensure_future(self._fetch(target))
            entry = (now + self._ttl, task)
            self._entries[key] = entry
        expires, task = entry
        # shield: a client that disconnects must not cancel the fetch other requests await.
        result = await asyncio.shield(task)
        if result is None and expires > now + FAILURE_TTL:
            self._entries[key] = (now + FAILURE_TTL, task)
        return result

    def invalidate(self, target: DifyTarget) -> None:
        self._entries.pop(target.identity, None)

    async def _fetch(self, target: DifyTarget) -> AppParameters | None:
        try:
            body = await asyncio.wait_for(self._dify.parameters(target), FETCH_TIMEOUT)
            return parse_parameters(body)
        except DifyAPIError as exc:
            reason = f"Dify answered {exc.status} {exc.code or ''}".strip()
        except (DifyUnreachable, DifyTimeout, TimeoutError) as exc:
            reason = f"Dify unreachable ({type(exc).__name__})"
        except (msgspec.ValidationError, TypeError, ValueError) as exc:
            reason = f"unexpected /parameters body ({exc})"
        except Exception as exc:  # best effort by design: a chat never fails for this
            reason = f"{type(exc).__name__}: {exc}"
        log.warning("dify_parameters_unavailable", target=repr(target), reason=reason)
        return None
