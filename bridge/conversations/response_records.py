"""What the response store keeps: one record per stored Response, and its output items.

A :class:`StoredResponse` serves `previous_response_id` and `GET`/`DELETE /v1/responses/{id}`;
its :class:`StoredItem` rows serve `item_reference` inputs (`{"type": "item_reference",
"id": "msg_…"}`, what the Vercel AI SDK sends for the previous answer). Items are keyed by
``(owner, item id)``: a lookup with another key's owner hash simply finds nothing.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from bridge.openai.responses import OutputMessage, ResponseObject

MAX_ITEM_ID_LENGTH = 256
"""Longer ids are never looked up (the bridge mints ~36-character ones): an unknown item."""


class StoredResponse(msgspec.Struct, kw_only=True):
    id: str
    owner: str
    """Who may read, continue, reference or delete it: a hash of the caller's key
    (:func:`bridge.conversations.response_keeper.owner_of`), never the key."""
    app_id: str
    user: str
    """The Dify `user` of the turn: a follow-up without `user` runs as this user."""
    conversation_id: str | None
    """None for apps without conversations (workflow, completion) and for failed turns."""
    message_id: str | None
    history: list[tuple[str, str]]
    response: ResponseObject


class StoredItem(msgspec.Struct, kw_only=True):
    """One output item of a stored response, as an `item_reference` turns it back into input."""

    id: str
    response_id: str
    type: Literal["message", "reasoning"]
    text: str
    """The answer text of a `message`; empty for `reasoning` (never part of the history)."""


def items_of(record: StoredResponse) -> list[StoredItem]:
    items = []
    for output in record.response.output:
        if isinstance(output, OutputMessage):
            text = "".join(part.text for part in output.content)
            items.append(StoredItem(id=output.id, response_id=record.id, type="message", text=text))
        else:
            items.append(StoredItem(id=output.id, response_id=record.id, type="reasoning", text=""))
    return items


_response_decoder = msgspec.json.Decoder(StoredResponse)
_item_decoder = msgspec.json.Decoder(StoredItem)


def decode_response(raw: object) -> StoredResponse | None:
    try:
        return _response_decoder.decode(raw)  # type: ignore[arg-type]
    except (msgspec.DecodeError, TypeError):
        # Written by an incompatible bridge version: as good as absent.
        return None


def decode_item(raw: object) -> StoredItem | None:
    try:
        return _item_decoder.decode(raw)  # type: ignore[arg-type]
    except (msgspec.DecodeError, TypeError):
        return None


def lookup_ids(item_ids: list[str]) -> list[str]:
    """The ids worth a lookup: distinct, and not absurdly long."""
    return list(dict.fromkeys(i for i in item_ids if 0 < len(i) <= MAX_ITEM_ID_LENGTH))
