"""Which Dify file `type` a file is, from its extension, MIME type or first bytes.

Dify decides the type of an uploaded file by extension first and MIME type second, and rejects
a `files` entry whose declared `type` disagrees with that (unless it is `custom`). The lists
below follow Dify 1.x's own extension groups so the type the bridge declares is the type Dify
detects.
"""

from __future__ import annotations

import mimetypes
from typing import Literal

DifyFileType = Literal["image", "document", "audio", "video", "custom"]

IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "gif", "svg"})
VIDEO_EXTENSIONS = frozenset({"mp4", "mov", "mpeg", "webm"})
AUDIO_EXTENSIONS = frozenset({"mp3", "m4a", "wav", "amr", "mpga"})
DOCUMENT_EXTENSIONS = frozenset(
    {
        "txt", "markdown", "md", "mdx", "pdf", "html", "htm", "xlsx", "xls", "vtt",
        "properties", "doc", "docx", "csv", "eml", "epub", "msg", "ppt", "pptx", "xml", "json",
    }
)  # fmt: skip

# mimetypes' first guess is not always the everyday extension (image/jpeg → .jpe on some systems).
_PREFERRED_EXTENSION = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/svg+xml": "svg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/amr": "amr",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/markdown": "md",
    "text/csv": "csv",
    "text/html": "html",
    "application/json": "json",
}

_PREFERRED_MIME = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "amr": "audio/amr",
    "md": "text/markdown",
    "markdown": "text/markdown",
    "mdx": "text/markdown",
}

# (offset, magic bytes, MIME): enough to name what OpenAI clients send without a MIME type.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"\xff\xfb", "audio/mpeg"),
    (0, b"\xff\xf3", "audio/mpeg"),
    (0, b"#!AMR", "audio/amr"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
)


def extension_of(filename: str | None) -> str:
    """`report.PDF` → `pdf`; no extension → empty string."""
    if not filename or "." not in filename:
        return ""
    return filename.rsplit(".", 1)[1].strip().lower()


def extension_for_mime(mime_type: str | None) -> str:
    if not mime_type:
        return ""
    mime_type = mime_type.lower()
    if mime_type in _PREFERRED_EXTENSION:
        return _PREFERRED_EXTENSION[mime_type]
    guessed = mimetypes.guess_extension(mime_type, strict=False)
    return guessed.lstrip(".") if guessed else ""


def mime_for_extension(extension: str) -> str | None:
    if not extension:
        return None
    if extension in _PREFERRED_MIME:
        return _PREFERRED_MIME[extension]
    return mimetypes.guess_type(f"file.{extension}", strict=False)[0]


def sniff_mime(content: bytes) -> str | None:
    """The MIME type the first bytes announce, for the formats clients commonly send."""
    for offset, magic, mime in _MAGIC:
        if content[offset : offset + len(magic)] == magic:
            return mime
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content[:4] == b"RIFF" and content[8:12] == b"WAVE":
        return "audio/wav"
    if content[4:8] == b"ftyp":
        return "audio/mp4" if content[8:11] == b"M4A" else "video/mp4"
    return None


def classify(extension: str, mime_type: str | None) -> DifyFileType:
    """Dify's rule: a known extension decides; otherwise the MIME type's family."""
    if extension in IMAGE_EXTENSIONS:
        return "image"
    if extension in VIDEO_EXTENSIONS:
        return "video"
    if extension in AUDIO_EXTENSIONS:
        return "audio"
    if extension in DOCUMENT_EXTENSIONS:
        return "document"
    if not mime_type:
        return "custom"
    family = mime_type.split("/", 1)[0].lower()
    if family in ("image", "video", "audio"):
        return family  # type: ignore[return-value]
    if family == "text" or mime_type.lower() == "application/pdf":
        return "document"
    return "custom"
