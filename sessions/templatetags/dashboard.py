"""Formatting for the dashboard pages: money, counts, latencies, verdicts; and the live price estimate."""

from __future__ import annotations

import json
import math
from decimal import Decimal

from django import template
from django.utils.safestring import mark_safe

from .. import credits
from ..models import NANO_PER_USD

register = template.Library()


def _usd(value: Decimal) -> str:
    """A non-negative amount: $1,234.56 · $0.42 · $0.0042 · $0.000123."""
    if value >= 1:
        return f"${value:,.2f}"
    text = f"{value:.{4 if value >= Decimal('0.01') else 6}f}".rstrip("0")
    if len(text.split(".")[1]) < 2:
        text = f"{value:.2f}"
    return "$" + text


def _cost(value: Decimal) -> str:
    """An amount spent, to two significant digits below 10 cents: $12.34 · $0.20 · $0.020 · $0.00087."""
    if value == 0 or value >= Decimal("0.1"):
        return f"${value:,.2f}"
    decimals = min(9, max(2, -math.floor(math.log10(value)) + 1))
    return f"${value:.{decimals}f}"


@register.filter
def usd_nano(nano) -> str:
    """Nano-dollars spent, as money."""
    value = Decimal(int(nano or 0)) / NANO_PER_USD
    return ("−" if value < 0 else "") + _cost(abs(value))


@register.filter
def usd(value) -> str:
    value = Decimal(value or 0)
    return ("−" if value < 0 else "") + _usd(abs(value))


@register.filter
def compact(value) -> str:
    """1234 → 1.2k, 3400000 → 3.4M."""
    try:
        n = float(value or 0)
    except (TypeError, ValueError):
        return str(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= limit:
            text = f"{n / limit:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return f"{int(n):,}" if n == int(n) else f"{n:.1f}"


@register.filter
def ms(value) -> str:
    if value is None or value == "":
        return "—"
    v = float(value)
    if v >= 10_000:
        return f"{v / 1000:.0f} s"
    if v >= 1000:
        return f"{v / 1000:.2f} s".replace(".00 s", " s")
    return f"{v:.0f} ms"


@register.filter
def pct(value, digits: int = 1) -> str:
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.{digits}f}%"


@register.filter
def pretty_json(value) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        return str(value)


@register.filter
def short_id(value) -> str:
    return str(value)[:8]


@register.filter
def status_badge(status: str) -> str:
    return {
        "success": "badge-success",
        "failure": "badge-danger",
        "denied": "badge-warning",
        "open": "badge-blue",
        "error": "badge-danger",
        "idle": "badge-muted",
    }.get(status or "", "badge-muted")


@register.filter
def verdict_badge(verdict: str) -> str:
    v = verdict or ""
    if v.endswith("denied"):
        return "badge-danger"
    if v.endswith("allowed"):
        return "badge-success"
    return "badge-muted"


@register.filter
def verdict_label(verdict: str) -> str:
    return {
        "hard_denied": "Denied (hard)",
        "soft_denied": "Denied (soft)",
        "hard_allowed": "Allowed (hard)",
        "soft_allowed": "Allowed (soft)",
    }.get(verdict or "", verdict or "No verdict")


@register.filter
def llm_role(role: str) -> str:
    return {
        "pllm": "Planner LLM",
        "planner": "Planner LLM",
        "qllm": "Quarantined LLM",
        "quarantined": "Quarantined LLM",
        "llm": "LLM",
        "": "LLM",
    }.get((role or "").lower(), f"{role} LLM")


@register.filter
def meta_items(meta) -> list[tuple[str, list]]:
    """``[(label, values)]`` of a {tags, producers, consumers} metadata object, skipping empty ones."""
    if not isinstance(meta, dict):
        return []
    out = []
    for name in ("tags", "producers", "consumers"):
        values = meta.get(name)
        if values:
            out.append((name, ["any"] if values == ["*"] else list(values)))
    return out


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.inclusion_tag("sessions/_price_estimate.html")
def price_estimate():
    """The live price of the configuration being edited (the Configure defences form includes it)."""
    table = credits.price_table()
    return {
        "price_json": mark_safe(
            json.dumps(
                {
                    "prices": {c: float(v) for c, v in table.prices.items()},
                    "labels": table.labels,
                }
            ).replace("<", "\\u003c")
        )
    }


@register.filter
def policy_summary(policy) -> dict | None:
    """``{label, title}`` of a key's own security policy (SQRT or Cedar code, or auto-generated), else None:
    the key list shows it next to the defences, since a policy is a defence the user wrote."""
    if not isinstance(policy, dict):
        return None
    codes = policy.get("codes")
    code, language = (
        (codes.get("code") or "", codes.get("language") or "sqrt")
        if isinstance(codes, dict)
        else (codes if isinstance(codes, str) else "", "sqrt")
    )
    if code.strip():
        lines = sum(1 for line in code.splitlines() if line.strip())
        name = "Cedar" if str(language).lower() == "cedar" else "SQRT"
        return {"label": "Custom policy", "title": f"{name} policy, {lines} line{'s' if lines != 1 else ''}"}
    if policy.get("auto_gen"):
        return {"label": "Generated policy", "title": "The relay generates a policy for each session"}
    return None


@register.filter
def model_name(value) -> str:
    """A model without its provider's prefix ("anthropic/claude-sonnet-4.5" → "claude-sonnet-4.5"): narrow
    tables show the name, the full string is in the title."""
    return str(value or "").rsplit("/", 1)[-1]
