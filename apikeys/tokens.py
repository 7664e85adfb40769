"""Personal access tokens of the management API (``/api/v1/``): create, authenticate, revoke.

A token is ``sqat-`` + 32 random bytes (URL-safe base64). Only its SHA-256 hash is stored, with its first
characters as a non-secret, indexed ``prefix`` (what lists show and lookups use), exactly like relay keys
(``apikeys.services``). The prefixes never overlap: the relay accepts only ``sq-`` secrets
(``apikeys.selectors``), so a token is refused there; the management API accepts only ``sqat-`` tokens, so a
relay key is refused there.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.utils import timezone

from .models import AccessToken

TOKEN_PREFIX = "sqat-"
PREFIX_LENGTH = 13  # "sqat-" + 8 characters
LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used_at is written at most once a minute per token


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def is_access_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX)


def do_create_access_token(*, user, name: str, expires_at: datetime | None = None) -> tuple[AccessToken, str]:
    """Create a token; returns it with the token text, which is never stored and cannot be shown again."""
    for _ in range(5):
        token = generate_token()
        prefix = token[:PREFIX_LENGTH]
        if not AccessToken.objects.filter(prefix=prefix).exists():
            break
    record = AccessToken.objects.create(
        user=user,
        name=(name or "").strip()[:100] or "Untitled token",
        prefix=prefix,
        token_hash=hash_token(token),
        expires_at=expires_at,
    )
    return record, token


def do_revoke_access_token(*, token: AccessToken) -> bool:
    """Revoke a token. Idempotent: returns False when it was already revoked."""
    updated = AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    token.refresh_from_db(fields=["revoked_at"])
    return bool(updated)


def authenticate(token: str) -> AccessToken | None:
    """The active (not revoked, not expired) token of an active user whose text this is, or None.

    One indexed query by prefix, then a constant-time hash comparison; ``last_used_at`` is refreshed at most
    once a minute.
    """
    if not is_access_token(token) or not 40 <= len(token) <= 128:
        return None
    record = AccessToken.objects.select_related("user").filter(prefix=token[:PREFIX_LENGTH]).first()
    if record is None or not hmac.compare_digest(hash_token(token), record.token_hash):
        return None
    if not record.is_active or not record.user.is_active:
        return None
    now = timezone.now()
    if record.last_used_at is None or now - record.last_used_at >= LAST_USED_RESOLUTION:
        AccessToken.objects.filter(pk=record.pk).update(last_used_at=now)
        record.last_used_at = now
    return record


def tokens_for_user(user):
    return AccessToken.objects.filter(user=user).order_by("-created_at")
