"""Key governance in the dashboard and the admin: the configure page's "Limits and access" section, the key
list's limits and budget use, the overview's count of requests refused by a limit."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from apikeys import crypto, selectors
from apikeys import governance as g
from apikeys.models import ApiKey
from tests.dashboard.test_views import _configure_data
from tests.factories import PASSWORD, make_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def user_client(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture(autouse=True)
def memory_store():
    g.set_store(g.MemoryStore(seed=g.seed_budget_from_log))
    yield
    g.set_store(None)


def limits_data(key, **values) -> dict:
    """What the configure page posts: every field as rendered, with ``values`` in the limits section."""
    from django.test import Client

    data = _configure_data(key)
    page = Client()
    page.force_login(key.user)
    limits = page.get(reverse("apikeys:configure", args=[key.pk])).context["limits"]
    for name in limits.fields:
        value = limits[name].value()
        if isinstance(value, bool):
            if value:
                data[f"limits-{name}"] = "on"
        elif value is not None and name != "provider_key":
            data[f"limits-{name}"] = (
                value.strftime("%Y-%m-%dT%H:%M") if isinstance(value, datetime) else value
            )
    data.update({f"limits-{k}": v for k, v in values.items()})
    return data


def test_configure_saves_limits_and_the_provider_key_write_only(user_client, user):
    key, secret = make_key(user, arch="single-llm")
    url = reverse("apikeys:configure", args=[key.pk])
    page = user_client.get(url).content.decode()
    assert 'id="limits"' in page and "No provider key stored" in page
    r = user_client.post(
        url,
        limits_data(
            key,
            expires_at="2030-01-02T03:04",
            allowed_providers=["openai", "openrouter"],
            allowed_models="gpt-5-mini\nopenai/*, gpt-5-mini",
            rpm_limit="60",
            tpm_limit="100000",
            budget_usd="12.50",
            budget_period="day",
            budget_soft_percent="75",
            provider_key="sk-stored-secret",
            provider_key_provider="openrouter",
        ),
    )
    assert r.status_code == 302, r.content.decode()[:3000]
    key.refresh_from_db()
    assert key.expires_at == datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    assert key.allowed_providers == ["openai", "openrouter"] and key.allowed_models == [
        "gpt-5-mini",
        "openai/*",
    ]
    assert (key.rpm_limit, key.tpm_limit, key.budget_nano) == (60, 100_000, 12_500_000_000)
    assert (key.budget_period, key.budget_soft_percent, key.provider_key_provider) == (
        "day",
        75,
        "openrouter",
    )
    assert crypto.decrypt(key.encrypted_provider_key) == "sk-stored-secret" and key.provider_key_set_at
    principal = selectors.authenticate(secret)
    assert (
        principal.governance.rpm == 60
        and g.stored_credential(principal.governance, "openrouter") == "sk-stored-secret"
    )
    page = user_client.get(url).content.decode()
    assert "sk-stored-secret" not in page and key.encrypted_provider_key not in page
    assert "Provider key stored" in page and 'value="12.5"' in page
    # Saved again without a new provider key: the stored one is kept; "remove" deletes it.
    assert user_client.post(url, limits_data(key, rpm_limit="", budget_usd="12.5")).status_code == 302
    key.refresh_from_db()
    assert key.rpm_limit is None and key.has_provider_key
    assert user_client.post(url, limits_data(key, remove_provider_key="on", budget_usd="")).status_code == 302
    key.refresh_from_db()
    assert not key.has_provider_key and key.budget_nano is None


def test_configure_without_the_limits_section_keeps_them(user_client, user):
    key, _ = make_key(user, arch="single-llm")
    ApiKey.objects.filter(pk=key.pk).update(rpm_limit=5, encrypted_provider_key=crypto.encrypt("sk-x"))
    key.refresh_from_db()
    assert (
        user_client.post(
            reverse("apikeys:configure", args=[key.pk]), _configure_data(key, name="New")
        ).status_code
        == 302
    )
    key.refresh_from_db()
    assert key.name == "New" and key.rpm_limit == 5 and key.has_provider_key


def test_configure_limits_errors_save_nothing(user_client, user):
    key, _ = make_key(user, arch="single-llm")
    r = user_client.post(
        reverse("apikeys:configure", args=[key.pk]),
        limits_data(key, rpm_limit="0", budget_usd="-1", name="Changed"),
    )
    assert r.status_code == 400
    page = r.content.decode()
    assert "Nothing was saved" in page and "greater than or equal to 1" in page
    key.refresh_from_db()
    assert key.name != "Changed" and key.rpm_limit is None


def test_key_list_shows_limits_and_budget_use(user_client, user):
    from sessions.models import Granularity, UsageRollup

    key, _ = make_key(user, arch="single-llm")
    ApiKey.objects.filter(pk=key.pk).update(
        rpm_limit=60,
        tpm_limit=5000,
        budget_nano=2_000_000_000,
        budget_period="month",
        budget_soft_percent=50,
        expires_at=timezone.now() + timedelta(days=3),
    )
    UsageRollup.objects.create(
        api_key=key,
        granularity=Granularity.DAY,
        model="m",
        requests=3,
        bucket=timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0),
        cost_nano=1_500_000_000,
    )
    page = user_client.get(reverse("apikeys:list")).content.decode()
    row = re.search(rf'<tr data-key-id="{key.pk}".*?</tr>', page, re.S).group(0)
    assert "60 req/min" in row and "5,000 tok/min" in row and "expires" in row
    assert "$1.50 of $2.00 this month" in row and "over 50%" in row and 'aria-valuenow="75"' in row


def test_overview_counts_requests_refused_by_a_limit(user_client, user):
    from sessions.services import do_record_events

    key, _ = make_key(user, arch="single-llm")
    now = timezone.now().isoformat()
    events = [
        {
            "kind": "usage",
            "event_id": str(uuid.uuid4()),
            "created_at": now,
            "key_id": key.pk,
            "session_id": None,
            "endpoint_type": "chat",
            "api": "chat",
            "provider": "openrouter",
            "arch": "",
            "models": [],
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "latency_ms": 1.0,
            "status_code": status,
            "error_kind": kind,
            "streamed": False,
        }
        for status, kind in [(429, "limit_rpm")] * 3
        + [(402, "limit_budget"), (200, ""), (502, "upstream_5xx")]
    ]
    do_record_events(events)
    page = user_client.get(reverse("dashboard:overview") + "?range=24h").content.decode()
    kpi = re.search(r'data-kpi="refused".*?</div>', page, re.S).group(0)
    assert ">4<" in kpi and "3 requests/min" in kpi and "1 budget" in kpi


def test_admin_sets_limits_and_a_write_only_provider_key(client, user):
    get_user_model().objects.create_superuser("root", "root@example.com", "root-pass-123")
    assert client.login(username="root", password="root-pass-123")
    key, _ = make_key(user, arch="single-llm")
    url = reverse("admin:apikeys_apikey_change", args=[key.pk])
    assert client.get(url).status_code == 200
    data = {
        "user": user.pk,
        "name": key.name,
        "arch": key.arch,
        "content_logging": key.content_logging,
        "features": '{"agent_arch": "single-llm"}',
        "policy": "{}",
        "config": "{}",
        "allowed_providers": ["anthropic"],
        "allowed_models_text": "claude-*",
        "rpm_limit": "10",
        "tpm_limit": "",
        "budget_usd": "3.25",
        "budget_period": "month",
        "budget_soft_percent": "80",
        "provider_key": "sk-admin-set",
        "provider_key_provider": "anthropic",
        "expires_at_0": "",
        "expires_at_1": "",
    }
    r = client.post(url, data)
    assert r.status_code == 302, r.content.decode()[:4000]
    key.refresh_from_db()
    assert (
        key.allowed_providers == ["anthropic"] and key.allowed_models == ["claude-*"] and key.rpm_limit == 10
    )
    assert key.budget_nano == 3_250_000_000 and crypto.decrypt(key.encrypted_provider_key) == "sk-admin-set"
    page = client.get(url).content.decode()
    assert "sk-admin-set" not in page and key.encrypted_provider_key not in page
    assert "10 req/min" in client.get(reverse("admin:apikeys_apikey_changelist")).content.decode()
