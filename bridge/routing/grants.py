"""Keys issued at run time (the operator console, bridge.console) rather than configured.

The console's middleware looks the caller's key up in its store (async) before the route runs
and marks the request with the grant it found; the registry, whose checks are synchronous,
reads that mark here. The grant only counts for the very credential it was found for.
"""

from __future__ import annotations

import hashlib
import hmac
from contextvars import ContextVar

import msgspec


class KeyGrant(msgspec.Struct, frozen=True, kw_only=True):
    key_sha256: str
    name: str
    # Canonical model ids this key may use; empty: every model.
    models: tuple[str, ...] = ()

    def allows(self, model: str) -> bool:
        return not self.models or model in self.models


_current: ContextVar[KeyGrant | None] = ContextVar("bridge_key_grant", default=None)


def key_sha256(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


def grant_request(grant: KeyGrant | None) -> None:
    """Mark the request being served (its task's context) with `grant`."""
    _current.set(grant)


def granted(credential: str | None) -> KeyGrant | None:
    """The grant of this request, if it was found for `credential`."""
    grant = _current.get()
    if grant is None or not credential:
        return None
    if hmac.compare_digest(grant.key_sha256, key_sha256(credential)):
        return grant
    return None
