"""Files an app produced → Markdown links in the answer, each shown once.

Dify reports a produced file in up to three places for one run (rec. 46a/46d, README note 22):
a chatflow streams it as a Markdown image inside `message` text *and* lists it in
`message_end.files` / `workflow_finished.files`; an agent app sends `message_file` and lists
the same file again in `message_end.files` under another id and another signed query string.
A file is therefore known by its URL path and by every id Dify gave it. No I/O here.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec

# `](url)` in Markdown text: where a chatflow Answer already showed a file.
_MARKDOWN_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)")
# Dify renders file URLs relative (`/files/…`) unless its FILES_URL is set.
_RELATIVE_TARGET = "](/files/"


class ProducedFile(msgspec.Struct, frozen=True):
    url: str
    name: str
    is_image: bool
    ids: frozenset[str] = frozenset()

    def markdown(self) -> str:
        # Brackets in a file name would end the link text early.
        label = self.name.replace("[", "(").replace("]", ")")
        return f"{'!' if self.is_image else ''}[{label}]({self.url})"


def absolute_url(url: str, base: str | None) -> str:
    if base and url.startswith("/"):
        return base.rstrip("/") + url
    return url


def public_base(public_url: str | None, api_url: str) -> str:
    """Where relative `/files/…` URLs live: the configured public Dify URL, else the scheme and
    host of the app's Dify API URL (`http://dify:5001/v1` → `http://dify:5001`)."""
    if public_url:
        return public_url.rstrip("/")
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}"


def _url_key(url: str) -> str:
    # The signed query (timestamp, nonce, sign) differs on every mention of the same file.
    return unquote(urlsplit(url).path)


def is_file_object(value: Any) -> bool:
    return isinstance(value, dict) and (
        value.get("dify_model_identity") == "__dify__file__"
        or ("transfer_method" in value and ("url" in value or "remote_url" in value))
    )


def is_file_value(value: Any) -> bool:
    """A workflow output that is a file or a non-empty list of files."""
    if isinstance(value, list):
        return bool(value) and all(is_file_object(item) for item in value)
    return is_file_object(value)


def file_from_object(obj: dict[str, Any], base: str | None) -> ProducedFile | None:
    """A Dify file object (`message_end.files`, `workflow_finished.files`, file outputs)."""
    raw_url = obj.get("url") or obj.get("remote_url")
    if not raw_url or not isinstance(raw_url, str):
        return None
    url = absolute_url(raw_url, base)
    name = obj.get("filename") or posixpath.basename(urlsplit(url).path) or "file"
    mime = obj.get("mime_type") or ""
    is_image = obj.get("type") == "image" or (isinstance(mime, str) and mime.startswith("image/"))
    ids = frozenset(
        str(obj[key])
        for key in ("id", "related_id", "upload_file_id", "tool_file_id")
        if obj.get(key)
    )
    return ProducedFile(url=url, name=str(name), is_image=is_image, ids=ids)


def file_from_message_file(
    file_id: str, file_type: str, url: str, base: str | None
) -> ProducedFile | None:
    """A `message_file` event (agent apps, rec. 46d); it carries no file name."""
    if not url:
        return None
    url = absolute_url(url, base)
    name = posixpath.basename(urlsplit(url).path) or "file"
    return ProducedFile(
        url=url, name=name, is_image=file_type == "image", ids=frozenset({file_id} - {""})
    )


def files_in_outputs(outputs: dict[str, Any] | None, base: str | None) -> list[ProducedFile]:
    found: list[ProducedFile] = []
    for value in (outputs or {}).values():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if is_file_object(item):
                produced = file_from_object(item, base)
                if produced is not None:
                    found.append(produced)
    return found


class FileCollector:
    """Files to append to the answer, minus those the answer text already shows."""

    def __init__(self) -> None:
        self._files: list[ProducedFile] = []
        self._keys: set[str] = set()

    def add(self, produced: ProducedFile | None) -> None:
        if produced is None:
            return
        keys = {_url_key(produced.url), *produced.ids}
        if keys & self._keys:
            self._keys |= keys
            return
        self._keys |= keys
        self._files.append(produced)

    def markdown(self, answer: str) -> str:
        """The Markdown for every file not already linked in `answer`, one per line."""
        shown = {_url_key(url) for url in _MARKDOWN_TARGET.findall(answer)}
        lines = [f.markdown() for f in self._files if _url_key(f.url) not in shown]
        self._files.clear()
        return "\n".join(lines)


class RelativeLinkFixer:
    """Makes `](/files/…)` in streamed answer text absolute. The marker can be split across
    `message` events, so a tail that may start it is held back until the next piece."""

    def __init__(self, base: str | None) -> None:
        self._base = base.rstrip("/") if base else None
        self._tail = ""

    def feed(self, text: str) -> str:
        if self._base is None:
            return text
        text = self._tail + text
        self._tail = ""
        text = text.replace(_RELATIVE_TARGET, "](" + self._base + "/files/")
        for size in range(min(len(_RELATIVE_TARGET) - 1, len(text)), 0, -1):
            if text.endswith(_RELATIVE_TARGET[:size]):
                self._tail = text[-size:]
                return text[:-size]
        return text

    def flush(self) -> str:
        tail, self._tail = self._tail, ""
        return tail
