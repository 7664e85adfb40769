"""Keys: creation, hashing, authentication, revocation, documents, commands."""

import asyncio
import io
import json

import pytest
from django.core.management import CommandError, call_command

from apikeys import selectors, services
from apikeys.models import ApiKey
from apikeys.validation import DocumentsInvalid
from relay.config import preset_documents
from tests.factories import make_key

pytestmark = pytest.mark.django_db


def test_secret_format_and_storage(user):
    key, secret = make_key(user)
    assert secret.startswith("sq-") and len(secret) >= 3 + 43
    assert key.prefix == secret[:12]
    assert secret not in json.dumps(list(ApiKey.objects.values()), default=str)
    assert key.secret_hash == services.hash_secret(secret)


def test_presets_match_official_client_helpers(user):
    from sequrity.control.types.headers import FeaturesHeader, FineGrainedConfigHeader, SecurityPolicyHeader

    for arch, maker in (("single-llm", "single_llm"), ("dual-llm", "dual_llm")):
        docs = preset_documents(arch)
        assert docs["features"] == getattr(FeaturesHeader, maker)().dump_for_headers(mode="json")
        assert docs["policy"] == getattr(SecurityPolicyHeader, maker)().dump_for_headers(mode="json")
        assert docs["config"] == getattr(FineGrainedConfigHeader, maker)().dump_for_headers(mode="json")
        key, _ = make_key(user, arch=arch)
        assert key.documents == docs


def test_authenticate_and_revoke(transactional_db, user, settings):
    settings.RELAY_KEY_CACHE_SECONDS = 0
    key, secret = make_key(user)
    principal = asyncio.run(selectors.aauthenticate(secret))
    assert principal is not None and principal.id == key.pk and principal.arch == "dual-llm"
    assert asyncio.run(selectors.aauthenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B"))) is None
    assert asyncio.run(selectors.aauthenticate("sq-short")) is None
    assert services.do_revoke_api_key(key=key) is True
    assert services.do_revoke_api_key(key=key) is False  # idempotent
    assert asyncio.run(selectors.aauthenticate(secret)) is None


def test_invalid_documents_name_the_field_and_save_nothing(user):
    before = ApiKey.objects.count()
    with pytest.raises(DocumentsInvalid) as exc:
        services.do_create_api_key(user=user, name="x", arch="dual-llm", config='{"fsm": {"max_n_turns": 0}}')
    assert "fsm.max_n_turns" in str(exc.value)
    with pytest.raises(DocumentsInvalid) as exc:
        services.do_create_api_key(user=user, name="x", arch="dual-llm", features="{not json")
    assert "Invalid JSON" in str(exc.value)
    with pytest.raises(DocumentsInvalid) as exc:
        services.do_create_api_key(user=user, name="x", arch="triple-llm")
    assert "arch" in exc.value.errors
    assert ApiKey.objects.count() == before


def test_create_api_key_command_prints_secret_last(db):
    out = io.StringIO()
    call_command("create_api_key", "--username", "ops", "--arch", "single-llm", "--name", "ci", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert lines[0].startswith("id=") and " prefix=sq-" in lines[0]
    secret = lines[-1]
    assert selectors.authenticate(secret) is not None

    out = io.StringIO()
    call_command("list_api_keys", "--username", "ops", stdout=out)
    assert lines[0].split("prefix=")[1] in out.getvalue() and secret not in out.getvalue()

    out = io.StringIO()
    call_command("revoke_api_key", lines[0].split("prefix=")[1], stdout=out)
    assert "revoked" in out.getvalue()
    assert selectors.authenticate(secret) is None


def test_create_api_key_command_rejects_bad_documents(db):
    with pytest.raises(CommandError, match="fsm"):
        call_command(
            "create_api_key", "--username", "ops", "--arch", "dual-llm", "--config", '{"fsm": {"x": 1}}'
        )
    with pytest.raises(CommandError, match="--arch"):
        call_command("create_api_key", "--username", "ops", "--arch", "quad")
    assert not ApiKey.objects.exists()


def test_provider_credential_encrypted(transactional_db):
    cred = services.do_set_provider_credential(
        provider="openai", api_key="sk-secret", allowed_models=["gpt-5-mini"]
    )
    assert "sk-secret" not in cred.encrypted_api_key
    got = asyncio.run(selectors.aget_server_credential("openai"))
    assert got.api_key == "sk-secret" and got.allowed_models == ("gpt-5-mini",)
