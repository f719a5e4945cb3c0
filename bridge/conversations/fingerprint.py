"""Canonical form of an OpenAI message list, and the fingerprint of a conversation state.

The bridge recognises "the same conversation" across requests by hashing the history a client
resends. Clients re-serialise that history in small ways, so it is first reduced to a
canonical list of ``(role, text)`` pairs. The rules, in order, for each message:

Role
    ``message["role"]``, lower-cased; ``developer`` counts as ``system`` (newer OpenAI clients
    send ``developer`` where older ones send ``system``). ``tool`` and ``function`` messages keep
    their role. Every other key (``name``, ``reasoning_content``, ``tool_calls``,
    ``tool_call_id``, ``refusal``, ``audio`` …) is ignored.

Content
    ``None`` or missing → ``""``; a string is used as is; a list of parts is reduced part by
    part and the pieces are joined with ``"\\n"``:

    - ``text`` parts (and ``refusal`` parts) contribute their text; empty ones are skipped;
    - ``image_url`` parts contribute ``[image:<h>]``, ``file`` parts ``[file:<h>]`` and
      ``input_audio`` parts ``[audio:<h>]``, where ``<h>`` is the first 16 hex digits of the
      sha256 of the part's reference (the URL — a ``data:`` URI included —, or the file's
      ``file_id`` / ``file_data`` / ``filename``, or the audio data). The marker is stable
      across requests and tells a model reading carried history that an attachment was there;
      the attachment itself never enters the text;
    - a part of any other type contributes ``[<type>]``.

Text
    ``\\r\\n`` and lone ``\\r`` become ``\\n``. In **assistant** messages only, reasoning that
    clients echo back is removed: complete ``<think>``, ``<thinking>``, ``<reason>``,
    ``<reasoning>`` and ``<thought>`` blocks anywhere; an unterminated block of those at the
    very start (everything from its tag to the end); and ``<details>`` blocks that hold
    reasoning — ``type="reasoning"`` (Open WebUI) or a ``<summary>`` mentioning thinking,
    thought or reasoning (Dify's ``<summary> Thinking... </summary>``). User text is never
    rewritten this way: a user may well type ``<think>``. Finally surrounding whitespace is
    stripped.

System messages are part of the fingerprint: changing the system prompt starts a new
conversation. The fingerprint is the sha256 hex digest of the JSON encoding of
``["dify-bridge/v1", app_id, user, [[role, text], …]]``; the version tag changes whenever these
rules change, so old stored states simply stop matching.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

NormalisedMessage = tuple[str, str]
"""``(role, text)`` after normalisation."""

_FINGERPRINT_VERSION = "dify-bridge/v1"
_encoder = msgspec.json.Encoder()

_REASONING_TAGS = "think|thinking|reason|reasoning|thought"
_REASONING_BLOCK = re.compile(rf"<({_REASONING_TAGS})>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_UNTERMINATED_LEADING_BLOCK = re.compile(
    rf"^\s*<(?:{_REASONING_TAGS})>.*\Z", re.DOTALL | re.IGNORECASE
)
_DETAILS_BLOCK = re.compile(
    r"<details\b(?P<attrs>[^>]*)>(?P<body>.*?)</details\s*>", re.DOTALL | re.IGNORECASE
)
_SUMMARY = re.compile(
    r"^\s*<summary\b[^>]*>(?P<summary>.*?)</summary\s*>", re.DOTALL | re.IGNORECASE
)
_REASONING_SUMMARY = re.compile(r"think|thought|reason|思考|推理", re.IGNORECASE)
_REASONING_TYPE = re.compile(r"""\btype\s*=\s*["']?reasoning\b""", re.IGNORECASE)

_ROLE_ALIASES = {"developer": "system"}


def normalise_messages(messages: Iterable[Mapping[str, Any]]) -> list[NormalisedMessage]:
    """Reduce OpenAI-shaped messages to their canonical ``(role, text)`` pairs."""
    return [normalise_message(message) for message in messages]


def normalise_message(message: Mapping[str, Any]) -> NormalisedMessage:
    """Canonical ``(role, text)`` of one OpenAI-shaped message (rules in the module docstring)."""
    role = str(message.get("role") or "").lower()
    role = _ROLE_ALIASES.get(role, role)
    text = _content_text(message.get("content"))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if role == "assistant":
        text = _without_reasoning(text)
    return role, text.strip()


def fingerprint(app_id: str, user: str, messages: Sequence[Mapping[str, Any]]) -> str:
    """Fingerprint of a conversation state: OpenAI-shaped messages of one app and user."""
    return fingerprint_normalised(app_id, user, normalise_messages(messages))


def fingerprint_normalised(app_id: str, user: str, messages: Sequence[NormalisedMessage]) -> str:
    """Fingerprint of messages already reduced by :func:`normalise_messages`."""
    canonical = [_FINGERPRINT_VERSION, app_id, user, [[role, text] for role, text in messages]]
    return hashlib.sha256(_encoder.encode(canonical)).hexdigest()


def chat_key(app_id: str, user: str, client_key: str) -> str:
    """Store key for a client's own chat id (``X-Conversation-Key``).

    Scoped by app and user so that one user cannot reach another user's conversation by
    guessing or reusing a chat id; hashed so that arbitrary client strings make safe keys.
    """
    canonical = [_FINGERPRINT_VERSION, "chat-key", app_id, user, client_key]
    return hashlib.sha256(_encoder.encode(canonical)).hexdigest()


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        pieces = (_part_text(part) for part in content)
        return "\n".join(piece for piece in pieces if piece)
    return str(content)


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, Mapping):
        return ""
    kind = str(part.get("type") or "")
    if kind == "text":
        return str(part.get("text") or "")
    if kind == "refusal":
        return str(part.get("refusal") or "")
    if kind == "image_url":
        image = part.get("image_url")
        # Some clients send the URL directly instead of {"url": …}.
        url = image.get("url") if isinstance(image, Mapping) else image
        return _attachment_marker("image", url)
    if kind == "file":
        file = part.get("file")
        ref = None
        if isinstance(file, Mapping):
            ref = file.get("file_id") or file.get("file_data") or file.get("filename")
        return _attachment_marker("file", ref)
    if kind == "input_audio":
        audio = part.get("input_audio")
        ref = audio.get("data") if isinstance(audio, Mapping) else audio
        return _attachment_marker("audio", ref)
    return f"[{kind}]" if kind else ""


def _attachment_marker(kind: str, reference: Any) -> str:
    digest = hashlib.sha256(str(reference or "").encode()).hexdigest()[:16]
    return f"[{kind}:{digest}]"


def _without_reasoning(text: str) -> str:
    text = _DETAILS_BLOCK.sub(_drop_reasoning_details, text)
    text = _REASONING_BLOCK.sub("", text)
    return _UNTERMINATED_LEADING_BLOCK.sub("", text)


def _drop_reasoning_details(match: re.Match[str]) -> str:
    if _REASONING_TYPE.search(match["attrs"]):
        return ""
    summary = _SUMMARY.match(match["body"])
    if summary and _REASONING_SUMMARY.search(summary["summary"]):
        return ""
    return match[0]
