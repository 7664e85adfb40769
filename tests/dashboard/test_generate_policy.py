"""The configure page's "Generate policy" helper, against the fake upstream."""

import pytest
from django.urls import reverse

from apikeys import services
from apikeys.models import ApiKey
from tests import fake_upstream as fu
from tests.factories import make_key

pytestmark = pytest.mark.django_db


def test_generate_fills_a_compiled_policy_and_saves_nothing(
    user_client, user, upstream_settings, fake_upstream
):
    key, _ = make_key(user)
    before = ApiKey.objects.values().get(pk=key.pk)
    services.do_set_provider_credential(
        provider="openrouter", api_key="sk-server", allowed_models=["gpt-5-mini"]
    )
    fake_upstream.push(fu.text('```sqrt\ntool "delete_file" {\n    must deny always;\n}\n```'))
    r = user_client.post(
        reverse("apikeys:generate-policy", args=[key.pk]),
        {
            "description": "never delete files",
            "tools": '[{"type": "function", "function": {"name": "delete_file"}}]',
        },
    )
    assert r.status_code == 200, r.content
    assert 'tool "delete_file"' in r.json()["policy"]
    assert fake_upstream.requests[-1].api_key == "sk-server"
    assert "delete_file" in fake_upstream.requests[-1].text
    assert ApiKey.objects.values().get(pk=key.pk) == before
    page = user_client.get(reverse("apikeys:configure", args=[key.pk]))
    assert b"Generate policy" in page.content


def test_generate_errors_are_clear(user_client, user, other_user, upstream_settings, fake_upstream):
    key, _ = make_key(user)
    url = reverse("apikeys:generate-policy", args=[key.pk])
    r = user_client.post(url, {"description": ""})
    assert r.status_code == 400 and "description" in r.json()["error"]
    r = user_client.post(url, {"description": "x"})
    assert r.status_code == 400 and "credential" in r.json()["error"]
    r = user_client.post(url, {"description": "x", "tools": "[oops"})
    assert r.status_code == 400 and "tools" in r.json()["error"]
    other, _ = make_key(other_user)
    assert (
        user_client.post(
            reverse("apikeys:generate-policy", args=[other.pk]), {"description": "x"}
        ).status_code
        == 404
    )
    fake_upstream.push(
        fu.text("no policy here {"), fu.text("still nothing {"), fu.text("nope {"), fu.text("x {")
    )
    r = user_client.post(
        url, {"description": "x", "provider": "openai", "model": "gpt-5-mini", "provider_key": "sk-u"}
    )
    assert r.status_code == 400 and "Failed to generate a valid policy" in r.json()["error"]
    assert fake_upstream.requests[-1].api_key == "sk-u"
