"""What a reservation checks and grows, and how it is settled: the plan every store carries out.

A reservation is a list of :class:`Counter` (requests and tokens of this minute, spend of this period, always in
that order); a store answers with a code (:data:`OK`, or the counter at its limit) and :func:`refusal_for` turns
a code into the message the client sees. The stores differ only in where the counters live.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .rules import Governance, Refusal, _usd, _utc
from .windows import RATE_TTL, Period, budget_period, minute, retry_after_minute

OK, RPM, TPM, BUDGET, SEED = 0, 1, 2, 3, -1
"""A store's answer: admitted, or which counter is at its limit (SEED: the budget counter is not seeded yet)."""


@dataclass(frozen=True, slots=True)
class Counter:
    """One counter of a reservation: kind (r, t, b), window, limit, increment, seconds to live."""

    kind: str
    window: int
    limit: int
    inc: int
    ttl: int


@dataclass(slots=True)
class Reservation:
    gov: Governance
    minute: int
    period: Period | None
    tokens_est: int
    cost_est: int
    settled: bool = False


def plan(gov: Governance, now: float, tokens_est: int, cost_est: int) -> list[Counter]:
    """The counters a reservation checks and grows, always in the order r, t, b (lock order)."""
    out = []
    m = minute(now)
    if gov.rpm is not None:
        out.append(Counter("r", m, gov.rpm, 1, RATE_TTL))
    if gov.tpm is not None:
        out.append(Counter("t", m, gov.tpm, tokens_est, RATE_TTL))
    if gov.budget_nano is not None:
        p = budget_period(gov.budget_period, now)
        out.append(Counter("b", p.id, gov.budget_nano, cost_est, int(p.end - now) + 86400))
    return out


_CODES = {"r": RPM, "t": TPM, "b": BUDGET}


def settle_deltas(res: Reservation, tokens: int, cost: int, now: float) -> list[tuple[str, int, int, int]]:
    """``[(kind, window, delta, ttl)]`` that settle a reservation (ttl 0: only an existing counter).

    Tokens are counted in the minute the request ends in: its own minute (actual - estimate), or, when it
    ended in a later minute, the estimate stays in the old one and the actual tokens go to the current one."""
    gov = res.gov
    out = []
    if gov.tpm is not None:
        m = minute(now)
        if m == res.minute:
            out.append(("t", m, tokens - res.tokens_est, 0))
        else:
            out.append(("t", m, tokens, RATE_TTL))
    if gov.budget_nano is not None and res.period is not None:
        out.append(("b", res.period.id, cost - res.cost_est, 0))
    return out


class StoreUnavailable(Exception):
    pass


def refusal_for(code: int, used: int, gov: Governance, now: float) -> Refusal:
    if code == RPM:
        wait = retry_after_minute(now)
        return Refusal(
            429,
            f"Rate limit: this Sequrity API key allows {gov.rpm} requests per minute; retry in {wait} s",
            "limit_rpm",
            wait,
        )
    if code == TPM:
        wait = retry_after_minute(now)
        return Refusal(
            429,
            f"Rate limit: this Sequrity API key allows {gov.tpm} tokens per minute and {used} "
            f"were used this minute; retry in {wait} s",
            "limit_tpm",
            wait,
        )
    p = budget_period(gov.budget_period, now)
    return Refusal(
        402,
        f"Budget exhausted: the {p.label} budget of this Sequrity API key (${_usd(gov.budget_nano)}) is used "
        f"up (${_usd(used)} spent since {_utc(p.start)}); it resets at {_utc(p.end)}",
        "limit_budget",
        max(1, math.ceil(p.end - now)),
    )
