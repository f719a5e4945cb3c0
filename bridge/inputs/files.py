"""The files of a turn: the last user message's `image_url`, `file` and `input_audio` parts,
decoded and named — pure, no network.

Only the last user message counts: in a continued Dify conversation the earlier files are
already there, and the OpenAI client resends them every turn.
"""

from __future__ import annotations

import hashlib
import re

import msgspec

from bridge.errors import BridgeError, bad_request
from bridge.inputs.datauri import DataError, decode_base64, decode_file_data, parse_data_uri
from bridge.inputs.filetypes import (
    DifyFileType,
    classify,
    extension_for_mime,
    extension_of,
    mime_for_extension,
    sniff_mime,
)
from bridge.openai.types import (
    AudioPart,
    ChatCompletionRequest,
    ChatMessage,
    FilePart,
    ImagePart,
)

_UNSAFE_NAME = re.compile(r"[\\/\x00-\x1f]")


class RemoteFile(msgspec.Struct, frozen=True, kw_only=True):
    """An http(s) URL Dify fetches itself (`transfer_method: remote_url`)."""

    url: str
    type: DifyFileType
    param: str


class InlineFile(msgspec.Struct, frozen=True, kw_only=True):
    """Bytes the request carried; uploaded through `/files/upload` (`local_file`)."""

    content: bytes
    filename: str
    mime_type: str
    extension: str  # lower-case, no dot
    type: DifyFileType
    param: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


TurnFile = RemoteFile | InlineFile


def last_user_index(messages: list[ChatMessage]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return index
    return None


def safe_filename(name: str) -> str:
    # Dify refuses names containing / or \ (400 invalid_param); keep only the last segment.
    base = re.split(r"[\\/]", name.strip())[-1]
    return _UNSAFE_NAME.sub("_", base)[:200]


def inline_file(
    content: bytes,
    *,
    declared_mime: str | None,
    filename: str | None,
    stem: str,
    param: str,
) -> InlineFile:
    """Name and classify decoded bytes: the filename's extension, else the declared MIME
    type, else what the first bytes say."""
    name = safe_filename(filename) if filename else ""
    extension = extension_of(name)
    mime = declared_mime or mime_for_extension(extension) or sniff_mime(content)
    if not extension:
        extension = extension_for_mime(mime)
    if not name or name.startswith("."):
        name = f"{stem}-{hashlib.sha256(content).hexdigest()[:12]}" + (
            f".{extension}" if extension else ""
        )
    elif not extension_of(name) and extension:
        name = f"{name}.{extension}"
    return InlineFile(
        content=content,
        filename=name,
        mime_type=mime or "application/octet-stream",
        extension=extension,
        type=classify(extension, mime),
        param=param,
    )


def _broken(param: str, what: str, exc: DataError) -> BridgeError:
    return bad_request(
        f"Could not decode the {what}: {exc}.", param=param, code="invalid_file_data"
    )


def _image(part: ImagePart, param: str) -> TurnFile:
    url = part.url.strip()
    if url[:5].lower() == "data:":
        try:
            data = parse_data_uri(url)
        except DataError as exc:
            raise _broken(f"{param}.image_url.url", "image data URI", exc) from None
        return inline_file(
            data.content, declared_mime=data.mime_type, filename=None, stem="image", param=param
        )
    if re.match(r"^https?://[^\s/]+", url, re.IGNORECASE):
        return RemoteFile(url=url, type="image", param=param)
    raise bad_request(
        "An image_url must be an http(s) URL or a data: URI with base64 data.",
        param=f"{param}.image_url.url",
        code="invalid_image_url",
    )


def _file(part: FilePart, param: str) -> InlineFile:
    if not part.file.file_data:
        if part.file.file_id:
            raise bad_request(
                "`file_id` refers to OpenAI's Files API, which Dify does not have; send the "
                "file's content in `file_data` (base64 or a data: URI) with a `filename`.",
                param=f"{param}.file.file_id",
                code="unsupported_file_reference",
            )
        raise bad_request(
            "A file part needs `file_data` (base64 or a data: URI).",
            param=f"{param}.file.file_data",
            code="invalid_file_data",
        )
    try:
        data = decode_file_data(part.file.file_data)
    except DataError as exc:
        raise _broken(f"{param}.file.file_data", "file data", exc) from None
    return inline_file(
        data.content,
        declared_mime=data.mime_type,
        filename=part.file.filename,
        stem="file",
        param=param,
    )


def _audio(part: AudioPart, param: str) -> InlineFile:
    try:
        content = decode_base64(part.input_audio.data)
    except DataError as exc:
        raise _broken(f"{param}.input_audio.data", "audio data", exc) from None
    fmt = re.sub(r"[^a-z0-9]", "", (part.input_audio.format or "").lower()) or "wav"
    return inline_file(
        content,
        declared_mime=mime_for_extension(fmt),
        filename=f"audio-{hashlib.sha256(content).hexdigest()[:12]}.{fmt}",
        stem="audio",
        param=param,
    )


def turn_files(request: ChatCompletionRequest) -> list[TurnFile]:
    """The last user message's files, in order. Broken data raises a 400 naming the part."""
    index = last_user_index(request.messages)
    if index is None:
        return []
    content = request.messages[index].content
    if not isinstance(content, list):
        return []
    found: list[TurnFile] = []
    for position, part in enumerate(content):
        param = f"messages[{index}].content[{position}]"
        if isinstance(part, ImagePart):
            found.append(_image(part, param))
        elif isinstance(part, FilePart):
            found.append(_file(part, param))
        elif isinstance(part, AudioPart):
            found.append(_audio(part, param))
    return found
