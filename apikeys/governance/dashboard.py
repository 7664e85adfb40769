"""Budget use as the dashboard shows it: the live counter of each key's period, or its usage log."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from .configured_store import store
from .database_store import seed_budget_from_log
from .rules import _usd
from .windows import Period, budget_period

logger = logging.getLogger(__package__)


@dataclass(frozen=True)
class BudgetStatus:
    limit_nano: int
    used_nano: int
    soft_percent: int
    period: Period

    @property
    def percent(self) -> float:
        return 100.0 * self.used_nano / self.limit_nano if self.limit_nano else 100.0

    @property
    def bar_percent(self) -> float:
        return min(100.0, max(0.0, self.percent))

    @property
    def over_soft(self) -> bool:
        return self.percent >= self.soft_percent

    @property
    def exhausted(self) -> bool:
        return self.used_nano >= self.limit_nano

    @property
    def resets_at(self) -> datetime:
        return datetime.fromtimestamp(self.period.end, UTC)

    @property
    def used_usd(self) -> str:
        return _usd(max(0, self.used_nano))

    @property
    def limit_usd(self) -> str:
        return _usd(self.limit_nano)


def budget_statuses(keys, now: float | None = None) -> dict[int, BudgetStatus]:
    """Budget use of keys (``ApiKey`` objects) in their current period: the live counter, or the usage log
    when the period has no counter yet. One read of the store for all keys."""
    now = time.time() if now is None else now
    with_budget = [k for k in keys if k.budget_nano is not None]
    if not with_budget:
        return {}
    periods = {k.pk: budget_period(k.budget_period, now) for k in with_budget}
    try:
        live = store().read_many([(k.pk, "b", periods[k.pk].id) for k in with_budget], now)
    except Exception:  # noqa: BLE001 - the page still shows the logged spend
        logger.exception("governance store unavailable for the dashboard")
        live = {}
    out = {}
    for k in with_budget:
        p = periods[k.pk]
        used = live.get((k.pk, "b", p.id))
        if used is None:
            used = seed_budget_from_log(k.pk, p.start)
        out[k.pk] = BudgetStatus(k.budget_nano, int(used), k.budget_soft_percent, p)
    return out


def usd_to_nano(usd: Decimal) -> int:
    return int((Decimal(usd) * 10**9).to_integral_value())


def nano_to_usd(nano: int | None) -> Decimal | None:
    return None if nano is None else (Decimal(nano) / 10**9).normalize()
