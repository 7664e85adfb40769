"""Reads: relay authentication by key (one indexed query, briefly cached) and provider credentials.

Both caches are per process and short (``RELAY_KEY_CACHE_SECONDS``, 5 s for credentials). When refreshing an
entry fails because the database is unreachable (a restart, a failover), an entry that authenticated a key
(or found a credential) within ``RELAY_KEY_STALE_SECONDS`` keeps being served (stale-while-error), and the
database is asked again once per cache period only: a brief outage does not stop clients the relay already
knows, while a key it has not seen recently gets the relay's 503. The cost: a revocation made just before
the outage may take up to ``RELAY_KEY_STALE_SECONDS`` to apply in a worker that had the key cached.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError

from sequrity_site.aio import run_sync

from . import crypto, governance
from .key_format import PREFIX_LENGTH, SECRET_PREFIX
from .models import ApiKey, ProviderCredential


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    """What the relay needs of an authenticated key: identity and stored configuration."""

    id: int
    user_id: int
    prefix: str
    name: str
    arch: str
    documents: dict
    content_logging: str = "metadata"  # see relay.session_log
    governance: governance.Governance | None = (
        None  # expiry, lists, limits, stored credential (None: none set)
    )
    version_id: int | None = (
        None  # the KeyVersion enforced (apikeys.versions); logged with each tool decision
    )


logger = logging.getLogger(__name__)

# prefix -> (expires_at, secret_hash, principal or None, stale_until). Per process; entries live
# RELAY_KEY_CACHE_SECONDS, so a revocation reaches every worker within that time; while the database is
# unreachable a positive entry is served until stale_until (read from the database + RELAY_KEY_STALE_SECONDS).
_KEY_CACHE: dict[str, tuple[float, str, KeyPrincipal | None, float]] = {}
_FIELDS = (
    "id",
    "user_id",
    "prefix",
    "name",
    "arch",
    "features",
    "policy",
    "config",
    "content_logging",
    "secret_hash",
    "revoked_at",
    "current_version_id",
    *governance.ROW_FIELDS,
)


def forget_cached_key(prefix: str) -> None:
    _KEY_CACHE.pop(prefix, None)


def _principal(row: dict | None) -> tuple[str, KeyPrincipal | None]:
    if row is None:
        return "", None
    principal = None
    if row["revoked_at"] is None:
        principal = KeyPrincipal(
            id=row["id"],
            user_id=row["user_id"],
            prefix=row["prefix"],
            name=row["name"],
            arch=row["arch"],
            documents={"features": row["features"], "policy": row["policy"], "config": row["config"]},
            content_logging=row["content_logging"],
            governance=governance.from_row(row),
            version_id=row.get("current_version_id"),
        )
    return row["secret_hash"], principal


def _check(secret: str, entry: tuple) -> KeyPrincipal | None:
    secret_hash, principal = entry[1], entry[2]
    if principal is None:
        return None
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return principal if hmac.compare_digest(digest, secret_hash) else None


def _prefix_of(secret: str) -> str | None:
    if not secret.startswith(SECRET_PREFIX) or len(secret) < 40 or len(secret) > 128:
        return None
    return secret[:PREFIX_LENGTH]


async def aauthenticate(secret: str) -> KeyPrincipal | None:
    """The active key whose secret this is, or None. At most one indexed query per key per cache period."""
    prefix = _prefix_of(secret)
    if prefix is None:
        return None
    now = time.monotonic()
    entry = _KEY_CACHE.get(prefix)
    if entry is None or entry[0] < now:
        try:
            row = await run_sync(lambda: ApiKey.objects.filter(prefix=prefix).values(*_FIELDS).first())
        except DatabaseError as exc:
            if entry is None or entry[2] is None or len(entry) < 4 or entry[3] < now:
                raise
            logger.warning("database unavailable; key %s served from the cache (stale): %s", prefix, exc)
            entry = (now + settings.RELAY_KEY_CACHE_SECONDS, *entry[1:])  # ask again after one cache period
        else:
            secret_hash, principal = _principal(row)
            entry = (
                now + settings.RELAY_KEY_CACHE_SECONDS,
                secret_hash,
                principal,
                now + settings.RELAY_KEY_CACHE_SECONDS + settings.RELAY_KEY_STALE_SECONDS,
            )
        if len(_KEY_CACHE) > 10_000:
            _KEY_CACHE.clear()
        _KEY_CACHE[prefix] = entry
    return _check(secret, entry)


def authenticate(secret: str) -> KeyPrincipal | None:
    """Synchronous twin of :func:`aauthenticate` (management commands, benchmarks)."""
    prefix = _prefix_of(secret)
    if prefix is None:
        return None
    row = ApiKey.objects.filter(prefix=prefix).values(*_FIELDS).first()
    secret_hash, principal = _principal(row)
    return _check(secret, (0.0, secret_hash, principal, 0.0))


@dataclass(frozen=True, slots=True)
class ServerCredential:
    provider: str
    api_key: str
    allowed_models: tuple[str, ...]


_CRED_SECONDS = 5.0


# provider -> (expires_at, credential or None, stale_until); stale-while-error as for keys.
_CRED_CACHE: dict[str, tuple[float, ServerCredential | None, float]] = {}


async def aget_server_credential(provider: str) -> ServerCredential | None:
    """The enabled server-managed credential of a provider (decrypted), cached for a few seconds."""
    now = time.monotonic()
    hit = _CRED_CACHE.get(provider)
    if hit and hit[0] >= now:
        return hit[1]
    try:
        row = await run_sync(
            lambda: (
                ProviderCredential.objects.filter(provider=provider, enabled=True)
                .values("encrypted_api_key", "allowed_models")
                .first()
            )
        )
    except DatabaseError as exc:
        if hit is None or hit[1] is None or hit[2] < now:
            raise
        logger.warning("database unavailable; %s credential served from the cache (stale): %s", provider, exc)
        _CRED_CACHE[provider] = (now + _CRED_SECONDS, hit[1], hit[2])
        return hit[1]
    cred = None
    if row is not None:
        cred = ServerCredential(
            provider, crypto.decrypt(row["encrypted_api_key"]), tuple(row["allowed_models"] or ())
        )
    _CRED_CACHE[provider] = (
        now + _CRED_SECONDS,
        cred,
        now + _CRED_SECONDS + settings.RELAY_KEY_STALE_SECONDS,
    )
    return cred


def keys_for_user(user):
    return ApiKey.objects.filter(user=user)
