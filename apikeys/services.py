"""Writes for keys and provider credentials (HackSoft style: views and commands call these)."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from relay.config import preset_documents

from . import crypto
from .key_format import PREFIX_LENGTH, SECRET_PREFIX
from .models import ApiKey, ContentLogging, KeyVersion, ProviderCredential, VersionSource
from .selectors import forget_cached_key
from .validation import validate_documents
from .versions import record_version, version_of


def hash_secret(secret: str) -> str:
    """SHA-256 is enough: the secret has 256 bits of randomness, so it cannot be guessed from its hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def do_create_api_key(
    *,
    user,
    name: str,
    arch: str,
    features=None,
    policy=None,
    config=None,
    content_logging: str = ContentLogging.METADATA,
) -> tuple[ApiKey, str]:
    """Create a key; returns it with its secret, which is never stored and cannot be shown again.

    Documents left out take the architecture's built-in preset.
    """
    preset = preset_documents(arch) if arch in ("single-llm", "dual-llm") else {}
    docs = validate_documents(
        arch,
        preset.get("features") if features is None else features,
        preset.get("policy") if policy is None else policy,
        preset.get("config") if config is None else config,
    )
    for _ in range(5):
        secret = generate_secret()
        prefix = secret[:PREFIX_LENGTH]
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    with transaction.atomic():
        key = ApiKey.objects.create(
            user=user,
            name=name.strip() or "Untitled key",
            prefix=prefix,
            secret_hash=hash_secret(secret),
            arch=arch,
            content_logging=content_logging
            if content_logging in ContentLogging.values
            else ContentLogging.METADATA,
            **docs,
        )
        record_version(key=key, saved_by=user, source=VersionSource.CREATED)
    return key, secret


def do_update_api_key_config(
    *,
    key: ApiKey,
    arch: str,
    features,
    policy,
    config,
    name: str | None = None,
    content_logging: str | None = None,
    saved_by=None,
    source: str = VersionSource.DASHBOARD,
    reverted_from: int | None = None,
) -> ApiKey:
    """Replace a key's architecture and documents after validating them; nothing is saved on error.

    A changed configuration becomes the key's next version (``apikeys.versions``) in the same transaction;
    ``saved_by`` defaults to the key's owner (the dashboard only lets owners save).
    """
    docs = validate_documents(arch, features, policy, config)
    key.arch = arch
    key.features, key.policy, key.config = docs["features"], docs["policy"], docs["config"]
    if name is not None and name.strip():
        key.name = name.strip()
    if content_logging in ContentLogging.values:
        key.content_logging = content_logging
    with transaction.atomic():
        key.save(
            update_fields=["arch", "features", "policy", "config", "name", "content_logging", "updated_at"]
        )
        record_version(
            key=key,
            saved_by=saved_by,
            source=source,
            reverted_from=reverted_from,
            force=source == VersionSource.REVERT,
        )
    forget_cached_key(key.prefix)
    return key


def do_revert_to_version(*, key: ApiKey, number, saved_by=None):
    """Restore version ``number``'s configuration as a new version (validated again, saved atomically)."""
    old = version_of(key, number)
    if old is None:
        raise KeyVersion.DoesNotExist(f"key {key.pk} has no version {number}")
    do_update_api_key_config(
        key=key,
        arch=old.arch,
        features=old.features,
        policy=old.policy,
        config=old.config,
        saved_by=saved_by,
        source=VersionSource.REVERT,
        reverted_from=old.number,
    )
    return key.current_version


def do_revoke_api_key(*, key: ApiKey) -> bool:
    """Revoke a key. Idempotent: returns False when it was already revoked."""
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    forget_cached_key(key.prefix)
    key.refresh_from_db(fields=["revoked_at"])
    return bool(updated)


def get_or_create_user(username: str):
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username)
    return user


def do_set_provider_credential(
    *, provider: str, api_key: str, allowed_models: list[str], enabled: bool = True
):
    cred, _ = ProviderCredential.objects.update_or_create(
        provider=provider,
        defaults={
            "encrypted_api_key": crypto.encrypt(api_key),
            "allowed_models": allowed_models,
            "enabled": enabled,
        },
    )
    return cred


def do_rotate_provider_credentials() -> int:
    """Re-encrypt every stored credential with the newest FIELD_ENCRYPTION_KEY."""
    count = 0
    for cred in ProviderCredential.objects.all():
        cred.encrypted_api_key = crypto.rotate(cred.encrypted_api_key)
        cred.save(update_fields=["encrypted_api_key", "updated_at"])
        count += 1
    return count
