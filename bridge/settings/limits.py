"""The ``limits:`` section of the configuration: per-key concurrent streams and requests per
minute (enforced by bridge.http.limits; see docs/operations.md)."""

from __future__ import annotations

import re

import msgspec

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class Limit(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Limits for one key; ``None`` is no limit."""

    concurrent_streams: int | None = None
    requests_per_minute: int | None = None

    def __post_init__(self) -> None:
        # msgspec reports a ValueError here as a validation error at this struct's path.
        for name in ("concurrent_streams", "requests_per_minute"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (leave it out for no limit)")

    @property
    def limits_anything(self) -> bool:
        return self.concurrent_streams is not None or self.requests_per_minute is not None


class KeyLimit(Limit, frozen=True):
    """Limits for one key, named by the sha256 of the key (``printf %s "$KEY" | sha256sum``)."""

    key_sha256: str
    name: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _SHA256_HEX.match(self.key_sha256):
            raise ValueError("key_sha256 must be 64 lower-case hex digits (a sha256 of the key)")
        if self.name is not None and not re.match(r"^[A-Za-z0-9_.-]{1,64}$", self.name):
            raise ValueError("name must be 1-64 letters, digits, '_', '.' or '-'")


class LimitsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """The ``limits:`` section: ``default`` for every key, ``keys`` for particular ones."""

    default: Limit = msgspec.field(default_factory=Limit)
    keys: list[KeyLimit] = []

    def __post_init__(self) -> None:
        hashes = [entry.key_sha256 for entry in self.keys]
        if len(set(hashes)) != len(hashes):
            raise ValueError("keys: the same key_sha256 is listed twice")

    @property
    def enabled(self) -> bool:
        return self.default.limits_anything or any(k.limits_anything for k in self.keys)
