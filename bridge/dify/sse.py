"""Dify's event stream, bytes → typed events, one network read at a time.

httpx-sse's `EventSource` decodes text line by line through several generator layers per
event; on the hot path the bridge splits bytes itself and hands each line to httpx-sse's
`SSEDecoder`, which keeps the SSE field rules (comments, `event:`, multi-line `data:`, BOM-free
UTF-8). Everything one read delivered comes back as one list, so the layers above work per
batch, not per event.
"""

from __future__ import annotations

from httpx_sse._decoders import SSEDecoder

from bridge.dify.events import StreamItem, decode_event

# One event larger than this is not something Dify sends (its biggest, workflow_finished with
# all outputs, stays far below): stop instead of buffering without end.
MAX_EVENT_BYTES = 16 * 1024 * 1024


class MalformedStream(Exception):
    """The bytes are not a well-formed event stream (e.g. events without the blank line that
    ends each one: an event that never ends until EOF)."""


class EventStreamParser:
    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._decoder = SSEDecoder()
        self._tail = b""  # an unfinished line
        self._open = 0  # bytes of the event being read (fields since the last blank line)
        self._max = max_event_bytes

    def feed(self, data: bytes) -> list[StreamItem]:
        if self._tail:
            data = self._tail + data
        if b"\r" in data:
            # A `\r\n` may be split across reads: keep a trailing `\r` for the next one.
            held_cr = data.endswith(b"\r")
            data = data[:-1] if held_cr else data
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + (b"\r" if held_cr else b"")
        lines = data.split(b"\n")
        self._tail = lines.pop()
        events: list[StreamItem] = []
        decode = self._decoder.decode
        for raw in lines:
            if raw and not raw.startswith(b":"):
                self._open += len(raw)
                if self._open > self._max:
                    raise MalformedStream(f"an event larger than {self._max} bytes")
            elif not raw:
                self._open = 0
            sse = decode(raw.decode("utf-8", "replace"))
            if sse is not None:
                try:
                    events.append(decode_event(sse.event, sse.data))
                except Exception as exc:
                    exc.parsed = events  # type: ignore[attr-defined]
                    raise
        if len(self._tail) + self._open > self._max:
            raise MalformedStream(f"an event larger than {self._max} bytes")
        return events

    def close(self) -> None:
        """The stream ended. An event still open was never terminated: Dify ends every event
        with a blank line, so the stream was not one Dify (or a proxy) formed correctly."""
        tail = self._tail.strip(b"\r")
        if (tail and not tail.startswith(b":")) or self._open:
            raise MalformedStream("an event without the blank line that ends it")


def parsed_before(exc: BaseException) -> list[StreamItem]:
    """The events `feed` decoded in the same call before the one that raised `exc`."""
    return getattr(exc, "parsed", [])
