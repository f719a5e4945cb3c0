"""What the console shows of the traffic: the last N requests and the last hour per minute.

The request path pays one `deque.append` (RequestLog.add); everything else — token usage per
key, minute buckets, percentiles — is worked out from the ring by the console's own task.
Per process: with several workers each shows its own traffic (Prometheus adds them up).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import msgspec

MINUTES = 60


class RequestEntry(msgspec.Struct, kw_only=True):
    seq: int = 0
    time: float
    request_id: str
    key_name: str | None
    key_sha256: str | None
    path: str
    model: str | None
    status: int
    stream: bool
    ttft_ms: float | None
    duration_ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    conversation_id: str | None = None
    error_code: str | None = None
    incomplete: bool = False

    @property
    def stopped(self) -> bool:
        """The client left before the end: the bridge stopped the Dify run."""
        return self.incomplete or self.status == 499


@dataclass
class Minute:
    start: float
    requests: int = 0
    errors: int = 0
    stops: int = 0
    tokens: int = 0
    ttfts: list[float] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class RequestLog:
    def __init__(self, size: int) -> None:
        self.ring: deque[RequestEntry] = deque(maxlen=size)
        self._seq = 0
        self._seen = 0
        self.minutes: deque[Minute] = deque(maxlen=MINUTES)

    def add(self, entry: RequestEntry) -> None:
        self._seq += 1
        entry.seq = self._seq
        self.ring.append(entry)

    def fresh(self) -> list[RequestEntry]:
        """Entries added since the last call (the console's task takes them once)."""
        new = [entry for entry in self.ring if entry.seq > self._seen]
        self._seen = self._seq
        return new

    def count(self, entries: list[RequestEntry], now: float | None = None) -> None:
        for entry in entries:
            minute = self._minute(entry.time)
            minute.requests += 1
            minute.errors += entry.status >= 500 or entry.error_code is not None
            minute.stops += entry.stopped
            minute.tokens += entry.total_tokens
            if entry.ttft_ms is not None:
                minute.ttfts.append(entry.ttft_ms)
        self._minute(now or time.time())  # the chart moves on in quiet minutes too

    def _minute(self, at: float) -> Minute:
        start = at - at % 60
        if not self.minutes or self.minutes[-1].start < start:
            last = self.minutes[-1].start if self.minutes else start - 60
            while last < start:  # quiet minutes show as zeros
                last += 60
                self.minutes.append(Minute(start=last))
        for minute in reversed(self.minutes):
            if minute.start == start:
                return minute
        return self.minutes[0]  # older than the hour kept: counted in the oldest

    def recent(self, limit: int, **match: str) -> list[RequestEntry]:
        """Newest first; `match` filters on text fields (substring, case-insensitive)."""
        wanted = {k: v.lower() for k, v in match.items() if v}
        found = []
        for entry in reversed(self.ring):
            if all(v in str(getattr(entry, k, "") or "").lower() for k, v in wanted.items()):
                found.append(entry)
                if len(found) >= limit:
                    break
        return found

    def live(self, now: float | None = None) -> dict[str, object]:
        """The overview's figures over the last minute and the hour's series."""
        now = now or time.time()
        window = [m for m in self.minutes if m.start > now - 120]
        last = window[-1] if window else Minute(start=now)
        ttfts = [t for m in window for t in m.ttfts]
        total = sum(m.requests for m in window)
        return {
            "requests_per_minute": last.requests,
            "error_rate": (sum(m.errors for m in window) / total) if total else 0.0,
            "ttft_p50_ms": percentile(ttfts, 0.5),
            "ttft_p95_ms": percentile(ttfts, 0.95),
            "stops": sum(m.stops for m in self.minutes),
            "series": {
                "t": [m.start for m in self.minutes],
                "requests": [m.requests for m in self.minutes],
                "errors": [m.errors for m in self.minutes],
                "ttft_p95": [percentile(m.ttfts, 0.95) for m in self.minutes],
            },
        }
