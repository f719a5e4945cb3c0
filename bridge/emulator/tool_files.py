"""Files a run produces (`transfer_method: tool_file`, recordings 46a-46e) and their signed URLs.

Dify stores a node's binary output as a tool file and hands out
`<FILES_URL>/files/tools/<id><ext>?timestamp=…&nonce=…&sign=…`, freshly signed each time the file
is serialised. The emulator keeps the bytes in memory and serves them itself (file_routes.py),
signing with its own per-process secret so a forged or altered URL is refused like Dify refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import mimetypes
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .store import UUID_NIL

FILE_IDENTITY = "__dify__file__"
_SECRET = secrets.token_bytes(32)
_IMAGE_IN_MARKDOWN = re.compile(r"!\[[^\]]*\]\([^)]*\)")


@dataclass
class ToolFile:
    id: str
    filename: str
    extension: str
    mime_type: str
    content: bytes

    @property
    def file_type(self) -> str:
        return file_type_of(self.mime_type)


def file_type_of(mime_type: str) -> str:
    """Dify's FileType from a MIME type: image / audio / video / document / custom."""
    main = mime_type.split("/", 1)[0]
    if main in ("image", "audio", "video"):
        return main
    if mime_type.startswith(("text/", "application/pdf", "application/msword")):
        return "document"
    return "custom"


def new_tool_file(content: bytes, mime_type: str) -> ToolFile:
    """A uuid-hex name plus the extension the MIME type maps to, as Dify's ToolFileManager."""
    extension = mimetypes.guess_extension(mime_type.split(";")[0].strip()) or ".bin"
    return ToolFile(
        id=str(uuid.uuid4()),
        filename=uuid.uuid4().hex + extension,
        extension=extension,
        mime_type=mime_type.split(";")[0].strip(),
        content=content,
    )


def _signature(file_id: str, timestamp: str, nonce: str) -> str:
    message = f"file-preview|{file_id}|{timestamp}|{nonce}".encode()
    return base64.urlsafe_b64encode(hmac.new(_SECRET, message, hashlib.sha256).digest()).decode()


def signed_url(base_url: str, tool_file: ToolFile) -> str:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    sign = _signature(tool_file.id, timestamp, nonce)
    return (
        f"{base_url}/files/tools/{tool_file.id}{tool_file.extension}"
        f"?timestamp={timestamp}&nonce={nonce}&sign={sign}"
    )


def signature_ok(file_id: str, timestamp: str, nonce: str, sign: str) -> bool:
    return hmac.compare_digest(_signature(file_id, timestamp, nonce), sign)


def file_value(base_url: str, tool_file: ToolFile) -> dict[str, Any]:
    """The File object as it appears in outputs, `files` lists and message_end (46a)."""
    return {
        "dify_model_identity": FILE_IDENTITY,
        "id": None,
        "tenant_id": UUID_NIL,
        "type": tool_file.file_type,
        "transfer_method": "tool_file",
        "remote_url": None,
        "related_id": tool_file.id,
        "filename": tool_file.filename,
        "extension": tool_file.extension,
        "mime_type": tool_file.mime_type,
        "size": len(tool_file.content),
        "url": signed_url(base_url, tool_file),
    }


def is_file_value(value: Any) -> bool:
    return isinstance(value, dict) and value.get("dify_model_identity") == FILE_IDENTITY


def files_in(outputs: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Files among a node's or a run's top-level outputs (node_finished.files, 46a)."""
    found: list[dict[str, Any]] = []
    for value in (outputs or {}).values():
        items = value if isinstance(value, list) else [value]
        found += [item for item in items if is_file_value(item)]
    return found


def file_markdown(file: dict[str, Any]) -> str:
    """How a file variable reads inside Answer text: an image link for images (46a)."""
    if file.get("type") == "image":
        return f"![{file.get('filename') or ''}]({file.get('url')})"
    return f"[{file.get('filename') or file.get('url')}]({file.get('url')})"


def strip_images(answer: str) -> str:
    """The stored answer of a chatflow message: markdown images removed (46c)."""
    return _IMAGE_IN_MARKDOWN.sub("", answer).strip()


def message_file(file: dict[str, Any], message_file_id: str | None = None) -> dict[str, Any]:
    """One `message_files` item of `GET /v1/messages` (46c, 46e)."""
    return {
        "id": message_file_id or str(uuid.uuid4()),
        "filename": file.get("filename"),
        "type": file.get("type"),
        "url": file.get("url"),
        "mime_type": file.get("mime_type"),
        "size": file.get("size"),
        "transfer_method": file.get("transfer_method"),
        "belongs_to": "assistant",
        "upload_file_id": file.get("related_id"),
    }
