"""Shared helpers for the inputs tests: recorded `/parameters` bodies and request builders."""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from bridge.inputs.parameters import AppParameters, parse_parameters
from bridge.openai.types import ChatCompletionRequest
from tests.support.recordings import load

# The 8x8 PNG of the recordings' static server is not in the repo; any valid PNG bytes do.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 28


def recorded_parameters(recording: str) -> AppParameters:
    """`14a` (Cat_LLM, uploads off), `14b` (WF_Upper), `14c` (EchoChat), `30e` (LLMChat)."""
    return parse_parameters(load(recording).json)


def data_uri(content: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


def chat_request(*messages: dict[str, Any], **fields: Any) -> ChatCompletionRequest:
    body = {"model": "m", "messages": list(messages), **fields}
    return msgspec.convert(body, ChatCompletionRequest)


def user(*parts: Any) -> dict[str, Any]:
    """A user message; str parts become text parts."""
    content = [{"type": "text", "text": p} if isinstance(p, str) else p for p in parts]
    return {"role": "user", "content": content}


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def file_part(data: str, filename: str | None = None) -> dict[str, Any]:
    file: dict[str, Any] = {"file_data": data}
    if filename:
        file["filename"] = filename
    return {"type": "file", "file": file}


def audio(data: str, fmt: str = "wav") -> dict[str, Any]:
    return {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}
