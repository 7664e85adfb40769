"""Credits: prices per million tokens (base + architecture + enabled defences), the cost of a request, and
the relay's credit check.

* Operators set ``Price`` rows and grant credit (``CreditGrant``) in the admin.
* The usage task debits ``tokens / 1e6 × price(key's configuration)`` exactly once per request, in the
  transaction that inserts the usage event (see ``services._record_usage``).
* With ``CREDITS_ENFORCED`` on, the relay calls :func:`acheck_credit` before serving a request: one indexed
  query per user, cached in-process for ``CREDITS_CACHE_SECONDS`` (≤ 1 s), so a user whose balance reached
  zero gets HTTP 402 within a second of the debit that exhausted it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

from .models import NANO_PER_USD, CreditAccount, Price, PriceKind

_ONE = Decimal(1)


@dataclass(frozen=True)
class PriceTable:
    """``{code: USD per 1M tokens}`` with labels, as the admin set it."""

    prices: dict[str, Decimal]
    labels: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)

    def get(self, code: str) -> Decimal:
        return self.prices.get(code, Decimal(0))

    def breakdown(self, arch: str, defences: list[str]) -> list[tuple[str, str, Decimal]]:
        """``[(code, label, USD per 1M)]``: base, architecture, then each enabled defence."""
        rows = [("base", self.labels.get("base", "Base"), self.get("base"))]
        if arch:
            rows.append((arch, self.labels.get(arch, arch), self.get(arch)))
        for name in defences:
            rows.append((name, self.labels.get(name, name), self.get(name)))
        return rows

    def per_million(self, arch: str, defences: list[str]) -> Decimal:
        return sum((usd for _, _, usd in self.breakdown(arch, defences)), Decimal(0))

    def as_json(self) -> dict:
        return {code: str(usd) for code, usd in self.prices.items()}


def price_table() -> PriceTable:
    rows = Price.objects.values_list("code", "usd_per_million", "label", "kind")
    return PriceTable(
        prices={code: usd for code, usd, _, _ in rows},
        labels={code: label for code, _, label, _ in rows},
        kinds={code: kind for code, _, _, kind in rows},
    )


def enabled_defences(features: dict | None) -> list[str]:
    """Names of the classifiers and blockers a key's stored features enable (same rule as the key list)."""
    from relay.config import enabled_defences as _enabled

    try:
        return list(dict.fromkeys(_enabled({"features": features or {}})))
    except (TypeError, AttributeError, KeyError):
        return []


def cost_nano(tokens: int, usd_per_million: Decimal) -> int:
    """Cost of ``tokens`` at ``usd_per_million`` in nano-dollars, rounded half up (exact for prices with
    up to 6 decimals: 1 token at $x/1M is x × 1000 nano-dollars)."""
    if tokens <= 0 or usd_per_million <= 0:
        return 0
    return int((Decimal(tokens) * usd_per_million * (NANO_PER_USD // 10**6)).quantize(_ONE, ROUND_HALF_UP))


def key_price(key, table: PriceTable | None = None) -> tuple[Decimal, list[tuple[str, str, Decimal]]]:
    """(USD per 1M tokens, breakdown) of an API key's stored configuration."""
    table = table or price_table()
    rows = table.breakdown(key.arch, enabled_defences(key.features))
    return sum((usd for _, _, usd in rows), Decimal(0)), rows


def default_labels() -> dict[str, tuple[str, str]]:
    """Known components ``{code: (kind, label)}``, for seeding and the live estimate."""
    from apikeys.forms import ARCH_INFO, BLOCKERS, CLASSIFIERS

    out = {"base": (PriceKind.BASE, "Base")}
    out.update({arch: (PriceKind.ARCH, info["label"]) for arch, info in ARCH_INFO.items()})
    out.update({name: (PriceKind.DEFENCE, label) for name, (label, _) in {**CLASSIFIERS, **BLOCKERS}.items()})
    return out


# --- enforcement (the relay's request path) -----------------------------------------------------------------

# user_id -> (expires_at monotonic, message or None). Per process.
_CREDIT_CACHE: dict[int, tuple[float, str | None]] = {}


def _message(balance_nano: int | None) -> str | None:
    if balance_nano is not None and balance_nano > 0:
        return None
    balance = Decimal(balance_nano or 0) / NANO_PER_USD
    return (
        f"Insufficient credit: your Sequrity Control balance is ${balance:.2f}. Requests are billed per "
        "million tokens; ask your operator to add credit (see Credits in the dashboard)."
    )


def _cached(user_id: int) -> tuple[bool, str | None]:
    hit = _CREDIT_CACHE.get(user_id)
    if hit is not None and hit[0] >= time.monotonic():
        return True, hit[1]
    return False, None


def _store(user_id: int, message: str | None) -> str | None:
    if len(_CREDIT_CACHE) > 50_000:
        _CREDIT_CACHE.clear()
    _CREDIT_CACHE[user_id] = (time.monotonic() + min(1.0, settings.CREDITS_CACHE_SECONDS), message)
    return message


async def acheck_credit(user_id: int) -> str | None:
    """None when the user may make a request, else the message of the HTTP 402 to return.

    Always None unless ``CREDITS_ENFORCED``. One indexed query (primary key) per user per cache period.
    """
    if not settings.CREDITS_ENFORCED:
        return None
    hit, message = _cached(user_id)
    if hit:
        return message
    from sequrity_site.aio import run_sync

    balance = await run_sync(
        lambda: CreditAccount.objects.filter(pk=user_id).values_list("balance_nano", flat=True).first()
    )
    return _store(user_id, _message(balance))


def check_credit(user_id: int) -> str | None:
    """Synchronous twin of :func:`acheck_credit`."""
    if not settings.CREDITS_ENFORCED:
        return None
    hit, message = _cached(user_id)
    if hit:
        return message
    balance = CreditAccount.objects.filter(pk=user_id).values_list("balance_nano", flat=True).first()
    return _store(user_id, _message(balance))


def forget_cached_credit(user_id: int | None = None) -> None:
    if user_id is None:
        _CREDIT_CACHE.clear()
    else:
        _CREDIT_CACHE.pop(user_id, None)
