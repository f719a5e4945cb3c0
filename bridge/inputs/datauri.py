"""Decode what OpenAI clients put in content parts: `data:` URIs and bare base64 strings.

Pure functions; a `DataError` carries a message fit for the client (the caller adds `param`).
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote_to_bytes

import msgspec

_WHITESPACE = re.compile(r"\s+")
_STANDARD = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_URLSAFE = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")


class DataError(ValueError):
    """The data is not what it claims to be (broken base64, malformed data URI)."""


class DecodedData(msgspec.Struct, frozen=True):
    content: bytes
    mime_type: str | None = None  # as declared by a data URI; None for bare base64


def is_data_uri(value: str) -> bool:
    return value[:5].lower() == "data:"


def decode_base64(text: str) -> bytes:
    """Standard or URL-safe base64; whitespace and missing padding are forgiven (clients wrap
    lines and trim `=`), anything else is an error — never silently decoded garbage."""
    cleaned = _WHITESPACE.sub("", text)
    if not cleaned:
        raise DataError("the base64 data is empty")
    if len(cleaned) % 4 == 1:
        raise DataError("the base64 data is truncated or malformed")
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        if _STANDARD.match(padded):
            return base64.b64decode(padded, validate=True)
        if _URLSAFE.match(padded):
            return base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError):
        pass
    raise DataError("the data is not valid base64")


def parse_data_uri(uri: str) -> DecodedData:
    """`data:[<mime>][;param=…][;base64],<data>` (RFC 2397)."""
    if not is_data_uri(uri):
        raise DataError("expected a data: URI")
    header, sep, payload = uri[5:].partition(",")
    if not sep:
        raise DataError("the data: URI has no ',' before its data")
    pieces = [p.strip() for p in header.split(";")]
    mime = pieces[0].lower() or None
    if mime is not None and "/" not in mime:
        raise DataError(f"the data: URI declares an invalid media type {pieces[0]!r}")
    is_base64 = any(p.lower() == "base64" for p in pieces[1:])
    content = decode_base64(payload) if is_base64 else unquote_to_bytes(payload)
    if not content:
        raise DataError("the data: URI holds no data")
    return DecodedData(content=content, mime_type=mime)


def decode_file_data(value: str) -> DecodedData:
    """OpenAI `file.file_data`: a data URI, or (as the Python SDK docs show) bare base64."""
    if is_data_uri(value):
        return parse_data_uri(value)
    return DecodedData(content=decode_base64(value))
