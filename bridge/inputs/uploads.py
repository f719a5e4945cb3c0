"""Turn admitted files into Dify `files` entries, uploading inline bytes once.

OpenAI clients resend every image with every turn; the cache (per app, per Dify user, by
content hash) makes a resent image cost no second `POST /files/upload`. Uploads belong to the
Dify `user` that made them (a file of another user behaves as if missing, dify-service-api.md
§1.2), hence the user in the key.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog

from bridge.dify.client import DifyAPIError, DifyClient, DifyTarget, DifyTimeout, DifyUnreachable
from bridge.errors import BridgeError
from bridge.inputs.files import InlineFile, RemoteFile, TurnFile
from bridge.translate.errors import from_dify_error

log = structlog.get_logger("bridge.inputs")

UPLOAD_TTL = 6 * 3600.0
UPLOAD_MAX_ENTRIES = 4096

_Key = tuple[str, str, str]  # (app, user, sha256 of the content)


class _Uploaded(msgspec.Struct):
    id: str


class UploadCache:
    """`upload_file_id` by (app, user, content digest); LRU-bounded, entries expire.

    Concurrent requests with the same new file share one upload. A failed upload is not kept.
    """

    def __init__(self, ttl: float = UPLOAD_TTL, max_entries: int = UPLOAD_MAX_ENTRIES) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: OrderedDict[_Key, tuple[float, asyncio.Task[str]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def upload_id(self, key: _Key, upload: Callable[[], Awaitable[str]]) -> str:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now:
            entry = (now + self._ttl, asyncio.ensure_future(upload()))
            self._entries[key] = entry
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        self._entries.move_to_end(key)
        task = entry[1]
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception:
            if self._entries.get(key) is entry:
                del self._entries[key]
            raise

    def forget(self, app: str, user: str) -> None:
        for key in [k for k in self._entries if k[0] == app and k[1] == user]:
            del self._entries[key]


def _upload_error(exc: DifyAPIError, file: InlineFile, *, managed: bool) -> BridgeError:
    if exc.status in (400, 413, 415):
        code = exc.code or "file_rejected"
        detail = exc.message or ("too large" if exc.status == 413 else "rejected")
        return BridgeError(
            400,
            f"Dify refused the upload of {file.filename!r}: {detail} (Dify code {code}).",
            param=file.param,
            code=code,
            retryable=False,
        )
    return from_dify_error(exc, managed=managed)


class FileUploader:
    def __init__(self, dify: DifyClient, cache: UploadCache | None = None) -> None:
        self._dify = dify
        self.cache = cache or UploadCache()

    async def _upload(self, target: DifyTarget, file: InlineFile, user: str) -> str:
        body = await self._dify.upload(target, file.filename, file.content, file.mime_type, user)
        uploaded = msgspec.convert(body, _Uploaded, strict=False)
        log.info(
            "dify_file_uploaded",
            file_type=file.type,
            size=len(file.content),
            mime_type=file.mime_type,
            upload_file_id=uploaded.id,
        )
        return uploaded.id

    async def upload_id(
        self, target: DifyTarget, file: InlineFile, user: str, *, managed: bool
    ) -> str:
        key = (target.identity, user, file.digest)
        try:
            return await self.cache.upload_id(key, lambda: self._upload(target, file, user))
        except DifyAPIError as exc:
            raise _upload_error(exc, file, managed=managed) from None
        except DifyUnreachable:
            raise BridgeError(
                502, "Could not reach Dify to upload a file.", code="dify_unreachable"
            ) from None
        except DifyTimeout:
            raise BridgeError(
                504, "Dify did not finish a file upload in time.", code="dify_timeout"
            ) from None
        except (msgspec.ValidationError, TypeError):
            raise BridgeError(
                502, "Dify's upload answer had no file id.", code="dify_bad_upload", retryable=False
            ) from None

    async def dify_files(
        self, target: DifyTarget, files: list[TurnFile], user: str, *, managed: bool
    ) -> list[dict[str, Any]]:
        """The `files` array for the Dify call, in the message's order."""

        async def entry(file: TurnFile) -> dict[str, Any]:
            if isinstance(file, RemoteFile):
                return {"type": file.type, "transfer_method": "remote_url", "url": file.url}
            upload_id = await self.upload_id(target, file, user, managed=managed)
            return {"type": file.type, "transfer_method": "local_file", "upload_file_id": upload_id}

        return list(await asyncio.gather(*(entry(f) for f in files)))

    def forget(self, target: DifyTarget, user: str) -> None:
        self.cache.forget(target.identity, user)
