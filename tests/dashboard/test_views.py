"""Dashboard pages through Django's test client: accounts, keys, the secret shown once, configure, revoke."""

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from apikeys import selectors
from apikeys.models import ApiKey
from relay.config import preset_documents
from tests.factories import PASSWORD, UserFactory, make_key

pytestmark = pytest.mark.django_db

SECRET_RE = re.compile(r"sq-[A-Za-z0-9_-]{40,}")


def _create_form(client):
    page = client.get(reverse("apikeys:create"))
    assert page.status_code == 200
    token = re.search(r'name="token" value="([^"]+)"', page.content.decode()).group(1)
    return token


def _configure_data(key, **overrides):
    """What the configure page posts when nothing is touched (the rendered initial values)."""
    page = Client()
    page.force_login(key.user)
    form = page.get(reverse("apikeys:configure", args=[key.pk])).context["form"]
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- accounts -------------------------------------------------------------------------------------------


def test_signup_logs_in_and_lands_on_empty_key_list(client):
    response = client.post(
        reverse("signup"),
        {"username": "alice", "password1": "a-long-Passphrase-77", "password2": "a-long-Passphrase-77"},
        follow=True,
    )
    assert response.status_code == 200
    assert response.wsgi_request.user.username == "alice"
    html = response.content.decode()
    assert "No API keys yet" in html and "Welcome, alice" in html


def test_signup_errors_are_shown(client):
    response = client.post(reverse("signup"), {"username": "bob", "password1": "x", "password2": "y"})
    assert response.status_code == 200
    assert "didn’t match" in response.content.decode() or "didn't match" in response.content.decode()
    assert not get_user_model().objects.filter(username="bob").exists()


def test_login_logout_and_password_change(client, user):
    assert client.get(reverse("apikeys:list")).status_code == 302  # login required
    page = client.get(reverse("login"))
    assert page.status_code == 200 and "Log in" in page.content.decode()
    bad = client.post(reverse("login"), {"username": user.username, "password": "wrong"})
    assert bad.status_code == 200 and "correct username and password" in bad.content.decode()
    ok = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert ok.status_code == 302 and ok["Location"] == reverse("apikeys:list")

    changed = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "another-Long-pass-42",
            "new_password2": "another-Long-pass-42",
        },
    )
    assert changed.status_code == 302 and changed["Location"] == reverse("password_change_done")
    assert client.get(reverse("password_change_done")).status_code == 200
    assert client.get(reverse("apikeys:list")).status_code == 200  # still signed in

    assert client.get(reverse("logout")).status_code == 405  # logging out is a POST
    out = client.post(reverse("logout"), follow=True)
    assert out.redirect_chain[-1][0] == reverse("login")
    assert "signed out" in out.content.decode()
    assert client.get(reverse("apikeys:list")).status_code == 302
    assert client.login(username=user.username, password="another-Long-pass-42")


def test_layout_navigation(user_client, user):
    html = user_client.get(reverse("apikeys:list")).content.decode()
    assert "Sequrity Control" in html and reverse("dashboard:overview") in html
    assert "Change password" in html and reverse("logout") in html
    assert reverse("admin:index") not in html  # staff only
    user.is_staff = True
    user.save()
    assert reverse("admin:index") in user_client.get(reverse("apikeys:list")).content.decode()


def test_overview_placeholder(user_client):
    html = user_client.get(reverse("dashboard:overview")).content.decode()
    assert "No usage yet" in html and "curl" in html and "SequrityClient" in html
    assert "coming soon" not in html.lower()


# --- create and the secret shown once --------------------------------------------------------------------


def test_create_key_shows_secret_exactly_once(user_client, user):
    token = _create_form(user_client)
    response = user_client.post(
        reverse("apikeys:create"), {"name": "Agent", "arch": "dual-llm", "token": token}
    )
    key = ApiKey.objects.get(user=user)
    assert response.status_code == 302 and response["Location"] == reverse("apikeys:created", args=[key.pk])

    page = user_client.get(response["Location"])
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    html = page.content.decode()
    secrets_shown = SECRET_RE.findall(html)
    assert len(secrets_shown) == 1
    secret = secrets_shown[0]
    assert secret.startswith(key.prefix) and selectors.authenticate(secret).id == key.pk
    assert "won’t be shown again" in html or "will not be shown again" in html
    assert "copy-secret" in html

    again = user_client.get(response["Location"]).content.decode()
    assert secret not in again and not SECRET_RE.search(again) and key.prefix in again
    listing = user_client.get(reverse("apikeys:list")).content.decode()
    assert secret not in listing and key.prefix in listing and "Dual LLM" in listing
    assert secret not in json.dumps(dict(user_client.session.items()))
    assert key.documents == preset_documents("dual-llm")


def test_create_rejects_unknown_preset_and_missing_name(user_client, user):
    token = _create_form(user_client)
    response = user_client.post(
        reverse("apikeys:create"), {"name": "x", "arch": "triple-llm", "token": token}
    )
    assert response.status_code == 400
    assert "Unknown preset “triple-llm”" in response.content.decode()
    response = user_client.post(reverse("apikeys:create"), {"name": "", "arch": "single-llm", "token": token})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert not ApiKey.objects.exists()
    # the token was not used up by the failed attempts
    ok = user_client.post(reverse("apikeys:create"), {"name": "x", "arch": "single-llm", "token": token})
    assert ok.status_code == 302 and ApiKey.objects.get().arch == "single-llm"


def test_create_rejects_forged_or_foreign_token(user_client, other_user):
    foreign = Client()
    foreign.force_login(other_user)
    token = _create_form(foreign)
    for bad in (token, "garbage"):
        response = user_client.post(
            reverse("apikeys:create"), {"name": "x", "arch": "dual-llm", "token": bad}
        )
        assert response.status_code == 400 and "This form has expired" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_double_submission_creates_one_key(user_client, user):
    token = _create_form(user_client)
    data = {"name": "Twice", "arch": "dual-llm", "token": token}
    first = user_client.post(reverse("apikeys:create"), data)
    second = user_client.post(reverse("apikeys:create"), data)
    assert ApiKey.objects.filter(user=user).count() == 1
    key = ApiKey.objects.get(user=user)
    assert first["Location"] == second["Location"] == reverse("apikeys:created", args=[key.pk])
    page = user_client.get(second["Location"]).content.decode()
    assert len(SECRET_RE.findall(page)) == 1  # the first submission's secret is still shown, once
    assert "already submitted" in page


# --- configure -------------------------------------------------------------------------------------------


def test_configure_with_simple_fields(user_client, user):
    key, secret = make_key(user, arch="dual-llm")
    data = _configure_data(
        key,
        pii_redaction="on",
        pii_redaction_threshold="0.7",
        pii_redaction_mode="strict",
        url_blocker="on",
        arch="single-llm",
        name="Renamed",
    )
    response = user_client.post(reverse("apikeys:configure", args=[key.pk]), data)
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.name == "Renamed" and key.arch == "single-llm"
    assert key.features == {
        "agent_arch": "single-llm",
        "content_classifiers": [{"name": "pii_redaction", "threshold": 0.7, "mode": "strict"}],
        "content_blockers": [{"name": "url_blocker"}],
    }
    # untouched documents follow the new architecture's preset
    assert key.config == preset_documents("single-llm")["config"]
    assert key.policy == preset_documents("single-llm")["policy"]
    assert selectors.authenticate(secret).documents == key.documents
    listing = user_client.get(reverse("apikeys:list")).content.decode()
    assert "PII redaction" in listing and "URL blocker" in listing and "Single LLM" in listing


def test_configure_page_renders_fields_from_documents(user_client, user):
    key, _ = make_key(
        user,
        features={
            "agent_arch": "dual-llm",
            "content_classifiers": [{"name": "toxicity_filter", "threshold": 0.3, "mode": "very picky"}],
            "content_blockers": [{"name": "file_blocker"}],
        },
    )
    form = user_client.get(reverse("apikeys:configure", args=[key.pk])).context["form"]
    assert form["toxicity_filter"].value() is True and form["toxicity_filter_threshold"].value() == 0.3
    assert form["toxicity_filter_mode"].value() == "very picky" and form["file_blocker"].value() is True
    assert form["pii_redaction"].value() is False and form["arch"].value() == "dual-llm"
    assert json.loads(form["features_json"].value()) == key.features


def test_configure_advanced_json_is_authoritative_when_edited(user_client, user):
    key, _ = make_key(user, arch="dual-llm")
    features = {
        "agent_arch": "dual-llm",
        "content_classifiers": [{"name": "finance_topic_guardrail", "threshold": 0.9}],
    }
    config = {"fsm": {"max_n_turns": 7}}
    # the simple fields (stale, as without JavaScript) say otherwise; the edited JSON wins
    data = _configure_data(
        key, features_json=json.dumps(features), config_json=json.dumps(config), url_blocker="on"
    )
    response = user_client.post(reverse("apikeys:configure", args=[key.pk]), data)
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.features == features and key.config == config
    assert key.policy == preset_documents("dual-llm")["policy"]


def test_configure_arch_from_edited_json(user_client, user):
    key, _ = make_key(user, arch="dual-llm")
    data = _configure_data(key, features_json='{"agent_arch": "single-llm"}')
    assert user_client.post(reverse("apikeys:configure", args=[key.pk]), data).status_code == 302
    key.refresh_from_db()
    assert key.arch == "single-llm" and key.features == {"agent_arch": "single-llm"}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"config_json": '{"fsm": {"max_n_turns": 0}}'},
            "config_json",
            "fsm.max_n_turns: Input should be greater than or equal to 1",
        ),
        ({"config_json": '{"fsm": {"max_n_turns": 3}'}, "config_json", "Invalid JSON"),
        ({"config_json": "[1, 2]"}, "config_json", "must be a JSON object"),
        ({"config_json": '{"fsm": {"no_such_field": 1}}'}, "config_json", "fsm.no_such_field: unknown field"),
        ({"policy_json": '{"mode": "ultra-strict"}'}, "policy_json", "mode: Input should be"),
        (
            {"features_json": '{"content_classifiers": [{"name": "pii_redaction", "threshold": 2}]}'},
            "features_json",
            "content_classifiers[0].threshold: Input should be less than or equal to 1",
        ),
        (
            {"pii_redaction": "on", "pii_redaction_threshold": "1.5"},
            "pii_redaction_threshold",
            "threshold: must be between 0 and 1",
        ),
        ({"arch": "triple-llm"}, "arch", "Unknown preset “triple-llm”"),
    ],
)
def test_configure_errors_name_the_field_and_save_nothing(user_client, user, overrides, field, message):
    key, _ = make_key(user, arch="dual-llm")
    before = ApiKey.objects.values().get(pk=key.pk)
    response = user_client.post(
        reverse("apikeys:configure", args=[key.pk]), _configure_data(key, name="New", **overrides)
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert any(message in error for error in form.errors[field]), form.errors
    html = response.content.decode()
    assert "Nothing was saved" in html
    assert ApiKey.objects.values().get(pk=key.pk) == before


def test_configure_contradicting_arch_is_an_error(user_client, user):
    key, _ = make_key(user, arch="dual-llm")
    data = _configure_data(
        key, arch="single-llm", features_json='{"agent_arch": "dual-llm", "content_blockers": []}'
    )
    response = user_client.post(reverse("apikeys:configure", args=[key.pk]), data)
    assert response.status_code == 400
    assert any("agent_arch" in e for e in response.context["form"].errors["features_json"])
    key.refresh_from_db()
    assert key.arch == "dual-llm"


def test_configure_bad_sqrt_policy(user_client, user):
    key, _ = make_key(user, arch="dual-llm")
    before = ApiKey.objects.values().get(pk=key.pk)
    data = _configure_data(key, policy_code='tool "send_email" {\n    hard deny when ;\n}\n')
    response = user_client.post(reverse("apikeys:configure", args=[key.pk]), data)
    assert response.status_code == 400
    errors = response.context["form"].errors["policy_code"]
    assert errors and errors[0].startswith("codes.code")
    assert re.search(r"line \d+", errors[0]) and "column" in errors[0], errors
    assert ApiKey.objects.values().get(pk=key.pk) == before


def test_configure_good_sqrt_policy(user_client, user):
    key, _ = make_key(user, arch="dual-llm")
    code = 'tool "send_email" {\r\n    hard deny when "pii" in body.tags;\r\n}'
    response = user_client.post(
        reverse("apikeys:configure", args=[key.pk]), _configure_data(key, policy_code=code)
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.policy["codes"] == {"code": code.replace("\r\n", "\n"), "language": "sqrt"}


def test_revoked_key_configuration_is_read_only(user_client, user):
    key, _ = make_key(user)
    user_client.post(reverse("apikeys:revoke", args=[key.pk]))
    page = user_client.get(reverse("apikeys:configure", args=[key.pk]))
    assert page.status_code == 200 and "read-only" in page.content.decode()
    response = user_client.post(
        reverse("apikeys:configure", args=[key.pk]), _configure_data(key, name="Nope"), follow=True
    )
    assert "can no longer be changed" in response.content.decode()
    key.refresh_from_db()
    assert key.name != "Nope"


# --- revoke ----------------------------------------------------------------------------------------------


def test_revoke_confirmation_and_idempotence(user_client, user, settings):
    settings.RELAY_KEY_CACHE_SECONDS = 0
    key, secret = make_key(user)
    confirm = user_client.get(reverse("apikeys:revoke", args=[key.pk]))
    assert confirm.status_code == 200 and "Revoke “" in confirm.content.decode()
    key.refresh_from_db()
    assert key.is_active  # GET only asks

    first = user_client.post(reverse("apikeys:revoke", args=[key.pk]), follow=True)
    assert "Revoked “" in first.content.decode()
    assert selectors.authenticate(secret) is None
    key.refresh_from_db()
    revoked_at = key.revoked_at
    assert revoked_at is not None

    second = user_client.post(reverse("apikeys:revoke", args=[key.pk]), follow=True)
    assert second.status_code == 200 and "already revoked" in second.content.decode()
    key.refresh_from_db()
    assert key.revoked_at == revoked_at
    assert "Revoked" in user_client.get(reverse("apikeys:list")).content.decode()


# --- isolation and CSRF ------------------------------------------------------------------------------------


def test_other_users_keys_are_404(user_client, other_user):
    key, _ = make_key(other_user)
    for name in ("configure", "revoke", "created"):
        url = reverse(f"apikeys:{name}", args=[key.pk])
        assert user_client.get(url).status_code == 404
        assert user_client.post(url, _configure_data(key) if name == "configure" else {}).status_code in (
            404,
            405,
        )
    key.refresh_from_db()
    assert key.is_active and key.documents == preset_documents("dual-llm")
    assert key.prefix not in user_client.get(reverse("apikeys:list")).content.decode()


def test_missing_csrf_token_is_a_friendly_403(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    key, _ = make_key(user)
    for url, data in (
        (reverse("apikeys:create"), {"name": "x", "arch": "dual-llm", "token": "t"}),
        (reverse("apikeys:revoke", args=[key.pk]), {}),
        (reverse("apikeys:configure", args=[key.pk]), {"name": "changed", "arch": "single-llm"}),
    ):
        response = client.post(url, data)
        assert response.status_code == 403
        assert "This form has expired" in response.content.decode()
    key.refresh_from_db()
    assert key.is_active and key.name != "changed" and ApiKey.objects.count() == 1


def test_signup_requires_csrf(db):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        reverse("signup"),
        {"username": "mallory", "password1": "a-long-Passphrase-77", "password2": "a-long-Passphrase-77"},
    )
    assert response.status_code == 403
    assert not get_user_model().objects.filter(username="mallory").exists()


def test_unique_users_see_own_keys(user_client, user):
    mine, _ = make_key(user)
    other = UserFactory()
    theirs, _ = make_key(other)
    html = user_client.get(reverse("apikeys:list")).content.decode()
    assert mine.prefix in html and theirs.prefix not in html


def test_configure_without_the_documents_applies_the_simple_fields(user_client, user):
    key, _ = make_key(user, arch="single-llm")
    response = user_client.post(
        reverse("apikeys:configure", args=[key.pk]),
        {"name": key.name, "arch": "single-llm", "file_blocker": "on"},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.features == {"agent_arch": "single-llm", "content_blockers": [{"name": "file_blocker"}]}
    assert key.policy == preset_documents("single-llm")["policy"]
    assert key.config == preset_documents("single-llm")["config"]


def test_empty_post_is_a_form_error_not_a_crash(user_client, user):
    key, _ = make_key(user)
    response = user_client.post(reverse("apikeys:configure", args=[key.pk]), {})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
