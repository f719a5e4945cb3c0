"""Token budgets per bridge key (One API's quota): the arithmetic, apart from any storage.

Periods are calendar days or months in UTC. A request is refused once the tokens already
used in the period reach the budget; the request that crosses it is still answered (its
size is unknown until Dify reports usage), so a key may end a period a little over.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Literal

from bridge.errors import BridgeError

Period = Literal["day", "month"]


def period_id(period: Period, now: datetime) -> str:
    now = now.astimezone(UTC)
    return now.strftime("d%Y-%m-%d") if period == "day" else now.strftime("m%Y-%m")


def seconds_left(period: Period, now: datetime) -> float:
    """Until the period ends (the usage counter's lifetime, plus a margin, is based on it)."""
    now = now.astimezone(UTC)
    if period == "day":
        end = now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() + 86400
    else:
        days = calendar.monthrange(now.year, now.month)[1]
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
        end = start + days * 86400
    return max(1.0, end - now.timestamp())


def over_budget(used: int, budget: int | None) -> bool:
    return budget is not None and used >= budget


def remaining(used: int, budget: int | None) -> int | None:
    return None if budget is None else max(0, budget - used)


def insufficient_quota(period: Period) -> BridgeError:
    """OpenAI's answer when an account is out of credit: 429 `insufficient_quota`, which its
    SDKs do not retry (x-should-retry: false)."""
    return BridgeError(
        429,
        f"You exceeded this API key's token budget for the {period}; it resets at the start "
        f"of the next {period} (UTC). Ask the bridge's operator for a larger budget.",
        type="insufficient_quota",
        code="insufficient_quota",
        retryable=False,
    )
