"""Split the app's own thinking out of streamed answer text.

Dify streams an LLM's `<think>…</think>` inside `message` events even with
`reasoning_format: separated` (rec. 47a/47b), and older Dify versions wrap it in a
`<details …><summary>Thinking…</summary>…</details>` block. Tags can be split across events,
so the splitter keeps back any tail that might be the start of a tag.
"""

from __future__ import annotations

import re

_OPENERS = ("<think>", "<details")
_CLOSERS = {"<think>": "</think>", "<details": "</details>"}
_SUMMARY = re.compile(r"<summary>.*?</summary>", re.DOTALL)

Piece = tuple[str, str]  # ("content" | "reasoning", text)


def _partial_tail(text: str, tokens: tuple[str, ...]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of one of `tokens`."""
    best = 0
    for token in tokens:
        for size in range(min(len(token) - 1, len(text)), 0, -1):
            if text.endswith(token[:size]):
                best = max(best, size)
                break
    return best


class ThinkSplitter:
    def __init__(self) -> None:
        self._buffer = ""
        self._closer: str | None = None  # set while inside a block
        self._details = ""  # a <details> block is emitted whole, minus its <summary>
        self._content_seen = False

    @property
    def inside(self) -> bool:
        """A thinking block is open: its reasoning may continue in the next piece."""
        return self._closer is not None

    def feed(self, text: str) -> list[Piece]:
        self._buffer += text
        out: list[Piece] = []
        while self._buffer:
            if self._closer is None:
                if not self._scan_outside(out):
                    break
            elif not self._scan_inside(out):
                break
        return out

    def flush(self) -> list[Piece]:
        """The stream ended: whatever is held back is emitted as it stands."""
        out: list[Piece] = []
        rest, self._buffer = self._buffer, ""
        if self._closer is None:
            self._content(out, rest)
        else:
            self._reasoning(out, self._details + rest)
            self._details = ""
            self._closer = None
        return out

    def _scan_outside(self, out: list[Piece]) -> bool:
        positions = [(self._buffer.find(o), o) for o in _OPENERS]
        found = [(pos, o) for pos, o in positions if pos >= 0]
        if not found:
            keep = _partial_tail(self._buffer, _OPENERS)
            self._content(out, self._buffer[: len(self._buffer) - keep])
            self._buffer = self._buffer[len(self._buffer) - keep :]
            return False
        pos, opener = min(found)
        tag_end = pos + len(opener)
        if opener == "<details":
            close = self._buffer.find(">", tag_end)
            if close < 0:
                self._content(out, self._buffer[:pos])
                self._buffer = self._buffer[pos:]
                return False
            tag_end = close + 1
        self._content(out, self._buffer[:pos])
        self._buffer = self._buffer[tag_end:]
        self._closer = _CLOSERS[opener]
        return True

    def _scan_inside(self, out: list[Piece]) -> bool:
        closer = self._closer
        assert closer is not None
        pos = self._buffer.find(closer)
        if pos < 0:
            keep = _partial_tail(self._buffer, (closer,))
            body = self._buffer[: len(self._buffer) - keep]
            self._buffer = self._buffer[len(self._buffer) - keep :]
            if closer == "</details>":
                self._details += body
            else:
                self._reasoning(out, body)
            return False
        body = self._buffer[:pos]
        self._buffer = self._buffer[pos + len(closer) :]
        if closer == "</details>":
            self._reasoning(out, _SUMMARY.sub("", self._details + body))
            self._details = ""
        else:
            self._reasoning(out, body)
        self._closer = None
        return True

    def _content(self, out: list[Piece], text: str) -> None:
        if not self._content_seen:
            # The blank lines a model puts after its thinking are not part of the answer.
            text = text.lstrip()
        if text:
            self._content_seen = True
            out.append(("content", text))

    def _reasoning(self, out: list[Piece], text: str) -> None:
        if text.strip():
            out.append(("reasoning", text))
