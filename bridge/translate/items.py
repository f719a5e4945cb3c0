"""What the stream translator produces: output items, the shape every response format is
built from (chat chunks, completions, Responses events), and how a batch of them is merged."""

from __future__ import annotations

import msgspec

from bridge.errors import BridgeError
from bridge.openai.types import Usage


class ContentDelta(msgspec.Struct):
    text: str


class ReasoningDelta(msgspec.Struct):
    text: str


class ContentReplaced(msgspec.Struct):
    """Output moderation replaced the whole answer (Dify `message_replace`, rec. 44b/44d)."""

    text: str


class Finished(msgspec.Struct):
    finish_reason: str
    usage: Usage | None


class Failed(msgspec.Struct):
    error: BridgeError


OutputItem = ContentDelta | ReasoningDelta | ContentReplaced | Finished | Failed


def coalesced(items: list[OutputItem]) -> list[OutputItem]:
    """Adjacent content deltas merged into one (what was buffered goes out as one chunk).
    Reasoning items stay one whole line each: clients trim every thinking fragment."""
    if len(items) < 2:
        return items
    out: list[OutputItem] = []
    texts: list[str] = []
    for item in items:
        if type(item) is ContentDelta:
            texts.append(item.text)
            continue
        if texts:
            out.append(ContentDelta("".join(texts)))
            texts = []
        out.append(item)
    if texts:
        out.append(ContentDelta("".join(texts)))
    return out
