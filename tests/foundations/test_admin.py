"""The operator's console: every admin page renders, keys never show a hash, credentials are write-only."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from apikeys import services
from apikeys.models import ApiKey, ProviderCredential
from tests.factories import make_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    get_user_model().objects.create_superuser("root", "root@example.com", "root-pass-123")
    assert client.login(username="root", password="root-pass-123")
    return client


def test_admin_pages_render(admin_client, user):
    key, secret = make_key(user)
    services.do_set_provider_credential(
        provider="openai", api_key="sk-very-secret", allowed_models=["gpt-5-mini"]
    )
    from django.contrib import admin

    for model in admin.site._registry:
        opts = model._meta
        changelist = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert changelist.status_code == 200, opts.label
    page = admin_client.get(reverse("admin:apikeys_apikey_change", args=[key.pk])).content.decode()
    assert key.secret_hash not in page and secret not in page and key.prefix in page
    cred = ProviderCredential.objects.get()
    page = admin_client.get(
        reverse("admin:apikeys_providercredential_change", args=[cred.pk])
    ).content.decode()
    assert "sk-very-secret" not in page and cred.encrypted_api_key not in page


def test_admin_adds_a_credential_encrypted_and_revokes_keys(admin_client, user):
    r = admin_client.post(
        reverse("admin:apikeys_providercredential_add"),
        {
            "provider": "anthropic",
            "enabled": "on",
            "api_key": "sk-ant-x",
            "allowed_models": "claude-sonnet-4-6\nclaude-haiku-4-5",
        },
    )
    assert r.status_code == 302
    cred = ProviderCredential.objects.get(provider="anthropic")
    assert (
        cred.allowed_models == ["claude-sonnet-4-6", "claude-haiku-4-5"]
        and "sk-ant-x" not in cred.encrypted_api_key
    )
    key, _ = make_key(user)
    admin_client.post(
        reverse("admin:apikeys_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [key.pk]},
    )
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_an_operators_edit_of_the_documents_is_a_version(admin_client, user, rf):
    from django.contrib import admin

    from apikeys.models import KeyVersion

    key, _ = make_key(user)
    before = KeyVersion.objects.filter(api_key=key).count()
    operator = get_user_model().objects.get(username="root")
    request = rf.post("/admin/")
    request.user = operator
    model_admin = admin.site._registry[ApiKey]
    key.policy = {"codes": {"code": 'tool "send_email" { hard deny when true; }', "language": "sqrt"}}
    model_admin.save_model(request, key, form=None, change=True)
    newest = KeyVersion.objects.filter(api_key=key).order_by("-number").first()
    assert KeyVersion.objects.filter(api_key=key).count() == before + 1
    assert newest.source == "admin" and newest.saved_by == operator and newest.policy == key.policy
    assert ApiKey.objects.get(pk=key.pk).current_version_id == newest.pk
    model_admin.save_model(request, key, form=None, change=True)  # nothing changed: no new version
    assert KeyVersion.objects.filter(api_key=key).count() == before + 1
    page = admin_client.get(reverse("admin:apikeys_apikey_change", args=[key.pk])).content.decode()
    assert "Saved in the operator" in page  # the versions inline
