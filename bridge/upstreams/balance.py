"""Choosing among the healthy upstreams of one priority tier.

Each strategy sees only candidates (already filtered for health, tier and earlier attempts)
and returns one of them; the group owns the counters they read.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.upstreams.group import Upstream

# `latency`: the share of picks that go to a random candidate, so a slow upstream that got
# better is noticed (its figure is only updated when it is used).
EXPLORATION = 0.05


def weighted(candidates: Sequence[Upstream], turn: int) -> Upstream:
    if len(candidates) == 1:
        return candidates[0]
    return random.choices(candidates, weights=[u.weight for u in candidates])[0]


def round_robin(candidates: Sequence[Upstream], turn: int) -> Upstream:
    return candidates[turn % len(candidates)]


def least_busy(candidates: Sequence[Upstream], turn: int) -> Upstream:
    # Ties go round the tier, so idle upstreams share the load evenly.
    fewest = min(u.in_flight for u in candidates)
    idle = [u for u in candidates if u.in_flight == fewest]
    return idle[turn % len(idle)]


def latency(candidates: Sequence[Upstream], turn: int) -> Upstream:
    unknown = [u for u in candidates if u.ttfe is None]
    if unknown:
        return unknown[turn % len(unknown)]
    if random.random() < EXPLORATION:
        return random.choice(candidates)
    return min(candidates, key=lambda u: u.ttfe or 0.0)


STRATEGIES = {
    "weighted": weighted,
    "round_robin": round_robin,
    "least_busy": least_busy,
    "latency": latency,
}
