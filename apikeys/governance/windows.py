"""The time windows limits are counted in: fixed UTC minutes for rates, a UTC day or calendar month for budgets.

Pure arithmetic on epoch seconds, shared by the counters, the stores' expiry times and the dashboard.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

RATE_WINDOW = 60  # seconds: requests and tokens per minute are counted in fixed UTC minutes
RATE_TTL = 2 * RATE_WINDOW


@dataclass(frozen=True, slots=True)
class Period:
    id: int  # YYYYMMDD or YYYYMM
    start: float
    end: float

    @property
    def label(self) -> str:
        return "daily" if self.id >= 10**7 else "monthly"


@functools.lru_cache(maxsize=64)
def _period(kind: str, day: int) -> Period:
    d = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)
    if kind == "day":
        return Period(d.year * 10000 + d.month * 100 + d.day, d.timestamp(), d.timestamp() + 86400)
    start = d.replace(day=1)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return Period(start.year * 100 + start.month, start.timestamp(), end.timestamp())


def budget_period(kind: str, now: float) -> Period:
    """The UTC day or calendar month ``now`` is in."""
    return _period("day" if kind == "day" else "month", int(now // 86400))


def minute(now: float) -> int:
    return int(now // RATE_WINDOW)


def retry_after_minute(now: float) -> int:
    return max(1, math.ceil((minute(now) + 1) * RATE_WINDOW - now))
