"""Responses API requests → the bridge's chat pipeline (pure, no I/O).

:func:`chat_request_for` turns a Responses request (plus the history of the response it
continues, and the stored items its `item_reference` inputs name) into a
:class:`ChatCompletionRequest`, so `ChatService.prepare` serves it like a chat turn;
:func:`turn_history` is what the response store keeps of a turn for a later fork. The output
side (events, the `Response` object) is `bridge.translate.responses_out`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from bridge.errors import BridgeError, bad_request
from bridge.openai.responses import RESPONSE_IGNORED_FIELDS, ResponseCreateRequest
from bridge.openai.types import (
    ChatCompletionRequest,
    ChatMessage,
    ContentPart,
    FileData,
    FilePart,
    ImagePart,
    ImageURL,
    RefusalPart,
    TextPart,
)

log = structlog.get_logger("bridge.responses")

_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_SHOWN_ID_CHARS = 256

MAX_HISTORY_CHARS = 200_000
History = list[tuple[str, str]]
"""Earlier turns of a stored response chain as ``(role, text)``: user and assistant only."""

References = Mapping[str, ChatMessage | None]
"""What the `item_reference` inputs of a request name: an output message of a stored response
as the assistant message it was, ``None`` for an item that adds nothing (a reasoning item)."""


def item_not_found(item_id: str) -> BridgeError:
    """OpenAI's answer for an `item_reference` to an unknown (or another key's) item."""
    shown = item_id if len(item_id) <= _SHOWN_ID_CHARS else item_id[:_SHOWN_ID_CHARS] + "…"
    return BridgeError(
        404,
        f"Item with id '{shown}' not found.",
        param="input",
        code="item_not_found",
        retryable=False,
    )


def _is_reference(item: dict[str, Any]) -> bool:
    kind = item.get("type")
    # `type` may be left out of a reference (openai-python: `ItemReference.type` is optional).
    return kind == "item_reference" or (kind is None and "role" not in item and "id" in item)


def referenced_ids(value: str | list[dict[str, Any]] | None) -> list[str]:
    """The ids the `item_reference` items of `input` name, in order."""
    if not isinstance(value, list):
        return []
    ids = []
    for index, item in enumerate(value):
        if not _is_reference(item):
            continue
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            raise bad_request(
                "An item reference needs the item's `id`.", param=f"input[{index}].id"
            )
        ids.append(item_id)
    return ids


def input_messages(
    value: str | list[dict[str, Any]] | None, references: References | None = None
) -> list[ChatMessage]:
    """The `input` of a Responses request as chat messages; `item_reference` items are
    replaced by what they name in ``references`` (an id not there is a 404)."""
    if value is None or value == "" or value == []:
        raise bad_request("`input` is required: a string or a list of input items.", param="input")
    if isinstance(value, str):
        return [ChatMessage(role="user", content=value)]
    references = references or {}
    messages = []
    for index, item in enumerate(value):
        if _is_reference(item):
            item_id = item.get("id")
            if not isinstance(item_id, str) or item_id not in references:
                raise item_not_found(str(item_id))
            message = references[item_id]
            if message is not None:
                messages.append(message)
            continue
        kind = item.get("type") or "message"
        if kind != "message":
            # Tool calls and their outputs, echoed reasoning: the Dify app has no use for them
            # (it owns tools and keeps its own memory).
            log.debug("responses_input_item_ignored", item_type=str(kind)[:64])
            continue
        messages.append(_message(item, f"input[{index}]"))
    if not any(m.role == "user" for m in messages):
        raise bad_request("`input` must contain at least one user message.", param="input")
    return messages


def _message(item: dict[str, Any], param: str) -> ChatMessage:
    role = _ROLES.get(str(item.get("role")))
    if role is None:
        raise bad_request(
            "An input message's role must be one of user, assistant, system, developer.",
            param=f"{param}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        return ChatMessage(role=role, content=content)  # type: ignore[arg-type]
    if not isinstance(content, list):
        raise bad_request(
            "An input message's content must be a string or a list of parts.",
            param=f"{param}.content",
        )
    parts = [_part(part, f"{param}.content[{i}]") for i, part in enumerate(content)]
    return ChatMessage(role=role, content=[p for p in parts if p is not None])  # type: ignore[arg-type]


def _part(part: Any, param: str) -> ContentPart | None:
    if not isinstance(part, dict):
        raise bad_request("A content part must be an object.", param=param)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return TextPart(text=str(part.get("text") or ""))
    if kind == "refusal":
        return RefusalPart(refusal=str(part.get("refusal") or ""))
    if kind == "input_image":
        if part.get("image_url"):
            return ImagePart(image_url=ImageURL(url=str(part["image_url"])))
        # Only a file id: the chat path explains that OpenAI's Files API does not exist here.
        return FilePart(file=FileData(file_id=part.get("file_id")))
    if kind == "input_file":
        if part.get("file_url") and not part.get("file_data"):
            raise bad_request(
                "`file_url` is not supported; send the file's content in `file_data` "
                "(base64 or a data: URI) with a `filename`.",
                param=f"{param}.file_url",
                code="invalid_file_data",
            )
        return FilePart(
            file=FileData(
                file_data=part.get("file_data"),
                file_id=part.get("file_id"),
                filename=part.get("filename"),
            )
        )
    log.debug("responses_content_part_ignored", part_type=str(kind)[:64])
    return None


def chat_request_for(
    request: ResponseCreateRequest,
    history: History,
    *,
    references: References | None = None,
    user: str | None = None,
) -> ChatCompletionRequest:
    """The chat request `prepare` serves: instructions, then the stored history of the
    response being continued, then the new input (its item references resolved). ``user``,
    when given, is the `user` to run as (`response_keeper.continuation` decides it: a
    follow-up without `user` runs as the user of the response it continues)."""
    ignored = [name for name in RESPONSE_IGNORED_FIELDS if getattr(request, name) is not None]
    if ignored:
        log.debug("request_fields_ignored", fields=ignored)
    messages: list[ChatMessage] = []
    if request.instructions:
        messages.append(ChatMessage(role="system", content=request.instructions))
    messages.extend(ChatMessage(role=role, content=text) for role, text in history)  # type: ignore[arg-type]
    messages.extend(input_messages(request.input, references))
    return ChatCompletionRequest(
        model=request.model,
        messages=messages,
        stream=request.stream,
        user=user or request.user,
        metadata=request.metadata,
        inputs=request.inputs,
    )


def turn_history(request: ChatCompletionRequest, answer: str | None) -> History:
    """What a follow-up must know of this turn: its user/assistant text and the answer (None
    for a failed turn). Attachments are left out (they stay with the Dify conversation)."""
    turns = [
        (message.role, message.text())
        for message in request.messages
        if message.role in ("user", "assistant")
    ]
    if answer is not None:
        turns.append(("assistant", answer))
    # Every stored response holds its whole chain: bound it, oldest turns out first (a fork
    # from a very long chain carries its recent part, as a client would trim it).
    while len(turns) > 1 and sum(len(text) for _, text in turns) > MAX_HISTORY_CHARS:
        turns.pop(0)
    return turns
