"""A key's governance settings and the checks that need no I/O: expiry, allowed providers and models.

Kept apart from the counters and stores so that a key's rules read on their own, as the dashboard and the key
cache see them (``apikeys.selectors`` builds a :class:`Governance` per key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

ERROR_KINDS = ("limit_expired", "limit_provider", "limit_model", "limit_rpm", "limit_tpm", "limit_budget")
"""``error_kind`` of the usage events of refused requests (the overview counts them)."""


@dataclass(frozen=True, slots=True)
class Governance:
    """A key's governance settings, as the relay needs them (part of the cached ``KeyPrincipal``)."""

    key_id: int
    key_name: str = ""
    expires_at: float | None = None  # epoch seconds
    providers: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()  # exact names
    model_patterns: tuple[str, ...] = ()  # names with * ? [
    rpm: int | None = None
    tpm: int | None = None
    budget_nano: int | None = None
    budget_period: str = "month"
    arch: str = ""
    defences: tuple[str, ...] = ()
    provider_key: str = ""  # Fernet token of the key's own provider credential
    provider_key_provider: str = ""  # "" = for every provider

    @property
    def metered(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.budget_nano is not None

    def model_allowed(self, name: str) -> bool:
        if not self.models and not self.model_patterns:
            return True
        return name in self.models or any(fnmatchcase(name, p) for p in self.model_patterns)


_WILDCARDS = frozenset("*?[")


def from_values(
    *,
    key_id: int,
    name: str = "",
    expires_at: datetime | None = None,
    allowed_providers=None,
    allowed_models=None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    budget_nano: int | None = None,
    budget_period: str = "month",
    arch: str = "",
    features: dict | None = None,
    encrypted_provider_key: str = "",
    provider_key_provider: str = "",
) -> Governance | None:
    """The key's :class:`Governance`, or None when it has no setting at all (the relay then skips it)."""
    providers = frozenset(p for p in (allowed_providers or ()) if isinstance(p, str) and p)
    names = [m.strip() for m in (allowed_models or ()) if isinstance(m, str) and m.strip()]
    if not (
        expires_at
        or providers
        or names
        or rpm_limit is not None
        or tpm_limit is not None
        or budget_nano is not None
        or encrypted_provider_key
    ):
        return None
    defences: tuple[str, ...] = ()
    if budget_nano is not None:
        from relay.config import enabled_defences

        try:
            defences = tuple(dict.fromkeys(enabled_defences({"features": features or {}})))
        except (TypeError, AttributeError, KeyError):
            defences = ()
    return Governance(
        key_id=key_id,
        key_name=name,
        expires_at=expires_at.timestamp() if expires_at else None,
        providers=providers,
        models=frozenset(n for n in names if not _WILDCARDS & set(n)),
        model_patterns=tuple(n for n in names if _WILDCARDS & set(n)),
        rpm=rpm_limit,
        tpm=tpm_limit,
        budget_nano=budget_nano,
        budget_period=budget_period or "month",
        arch=arch,
        defences=defences,
        provider_key=encrypted_provider_key or "",
        provider_key_provider=provider_key_provider or "",
    )


ROW_FIELDS = (
    "expires_at",
    "allowed_providers",
    "allowed_models",
    "rpm_limit",
    "tpm_limit",
    "budget_nano",
    "budget_period",
    "encrypted_provider_key",
    "provider_key_provider",
)
"""The ``ApiKey`` columns :func:`from_row` reads (with id, name, arch, features)."""


def from_row(row: dict) -> Governance | None:
    return from_values(
        key_id=row["id"],
        name=row.get("name", ""),
        arch=row.get("arch", ""),
        features=row.get("features"),
        **{f: row.get(f) for f in ROW_FIELDS},
    )


def from_key(key) -> Governance | None:
    return from_values(
        key_id=key.pk,
        name=key.name,
        arch=key.arch,
        features=key.features,
        **{f: getattr(key, f) for f in ROW_FIELDS},
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    message: str
    kind: str
    retry_after: int | None = None


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def check_access(gov: Governance, provider: str, model: Any, now: float) -> Refusal | None:
    """Expiry, provider and model lists (no I/O). ``model`` is the request's ``model`` field."""
    if gov.expires_at is not None and now >= gov.expires_at:
        return Refusal(
            401,
            f"This Sequrity API key expired on {_utc(gov.expires_at)}; ask its owner to extend "
            "it or create a new key",
            "limit_expired",
        )
    if gov.providers and provider not in gov.providers:
        return Refusal(
            403,
            f"Provider '{provider}' is not allowed for this Sequrity API key (allowed: "
            f"{', '.join(sorted(gov.providers))})",
            "limit_provider",
        )
    if (gov.models or gov.model_patterns) and isinstance(model, str):
        for name in dict.fromkeys(part.strip() for part in model.split(",")):
            if name and not gov.model_allowed(name):
                allowed = ", ".join(sorted(gov.models) + list(gov.model_patterns))
                return Refusal(
                    403,
                    f"Model '{name}' is not allowed for this Sequrity API key (allowed: {allowed})",
                    "limit_model",
                )
    return None


def _usd(nano: int | None) -> str:
    """Dollars with cents, and up to 6 decimals where they matter: 0.50, 12.00, 0.000380."""
    text = f"{Decimal(nano or 0) / 10**9:.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"
