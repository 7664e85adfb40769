"""What a request costs against a key's budget, priced exactly like credits (``sessions.credits``).

The price table is cached for a few seconds so that the hot path prices a request without I/O; costs are
integer nano-dollars.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rules import Governance

PRICE_CACHE_SECONDS = 10.0

# prices: (expires monotonic, PriceTable); per (arch, defences): micro-dollars per million tokens, an integer
# (prices have at most 6 decimals), so a cost is integer arithmetic equal to ``sessions.credits.cost_nano``.
_prices: list = [0.0, None]
_micro_per_million: dict[tuple, int] = {}


async def _price_table():
    if _prices[1] is None or _prices[0] < time.monotonic():
        from sequrity_site.aio import run_sync
        from sessions.credits import price_table

        table = await run_sync(price_table)
        _micro_per_million.clear()
        _prices[:] = [time.monotonic() + PRICE_CACHE_SECONDS, table]
    return _prices[1]


def _cached_price(gov: Governance, arch: str) -> int | None:
    if _prices[1] is None or _prices[0] < time.monotonic():
        return None
    k = (arch or gov.arch, gov.defences)
    hit = _micro_per_million.get(k)
    if hit is None:
        usd = _prices[1].per_million(k[0], list(gov.defences))
        hit = _micro_per_million[k] = int((usd * 10**6).to_integral_value())
    return hit


async def price(gov: Governance, arch: str) -> int:
    """The key's price for an architecture in micro-dollars per million tokens (as the usage task debits it)."""
    hit = _cached_price(gov, arch)
    if hit is None:
        await _price_table()
        hit = _cached_price(gov, arch)
    return hit


def cost_of(tokens: int, micro_per_million: int) -> int:
    """Nano-dollars, rounded half up: ``tokens x USD/1M x 1000`` (``sessions.credits.cost_nano``)."""
    if tokens <= 0 or micro_per_million <= 0:
        return 0
    return (tokens * micro_per_million + 500) // 1000


def estimate_tokens(body: bytes | None) -> int:
    """What a request will cost at least, before it is served: its prompt, at ~4 bytes a token."""
    return len(body or b"") // 4
