"""Personal access tokens: the command, the dashboard page, and authentication of the management API."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from apikeys import tokens
from apikeys.models import AccessToken
from tests.api.conftest import client_for, token_for
from tests.factories import PASSWORD, make_key

pytestmark = pytest.mark.django_db


def test_command_prints_the_token_last_and_stores_only_its_hash(user):
    out = StringIO()
    call_command("create_access_token", "--username", user.username, "--name", "ci", stdout=out)
    lines = out.getvalue().strip().splitlines()
    token = lines[-1]
    assert token.startswith("sqat-") and len(token) > 40 and lines[0].startswith("id=")
    record = AccessToken.objects.get(user=user)
    assert record.name == "ci" and record.prefix == token[:13] and record.expires_at is None
    assert token not in str(AccessToken.objects.values().get(pk=record.pk))
    assert record.token_hash == tokens.hash_token(token)
    r = client_for(token=token).get("/api/v1/keys/")
    assert r.status_code == 200, r.content


def test_command_makes_the_user_and_an_expiring_token(db):
    out = StringIO()
    call_command("create_access_token", "--username", "newbie", "--expires-days", "3", stdout=out)
    record = AccessToken.objects.get(user__username="newbie")
    assert record.name == "CLI token"
    assert timedelta(days=2, hours=23) < record.expires_at - timezone.now() <= timedelta(days=3)


def test_requests_without_a_valid_token_are_401(user):
    key, secret = make_key(user)
    expired = token_for(user, expires_at=timezone.now() - timedelta(seconds=1))
    revoked_record, revoked = tokens.do_create_access_token(user=user, name="old")
    tokens.do_revoke_access_token(token=revoked_record)
    good = token_for(user)
    cases = {
        "none": None,
        "relay key": secret,
        "expired": expired,
        "revoked": revoked,
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "garbage": "sqat-nope",
    }
    for label, token in cases.items():
        r = client_for(token=token).get("/api/v1/keys/")
        assert r.status_code == 401, (label, r.content)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        body = r.json()
        assert body["errors"] == [] and body["code"] in ("not_authenticated", "authentication_failed"), body
    assert "relay key" in client_for(token=secret).get("/api/v1/keys/").json()["detail"]
    # Basic or other schemes are not accepted either.
    c = client_for()
    c.credentials(HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert c.get("/api/v1/keys/").status_code == 401
    # A dashboard session is not an API credential.
    c = client_for()
    c.login(username=user.username, password=PASSWORD)
    assert c.get("/api/v1/keys/").status_code == 401


def test_inactive_user_token_is_refused_and_last_used_is_recorded(user):
    token = token_for(user)
    assert client_for(token=token).get("/api/v1/keys/").status_code == 200
    record = AccessToken.objects.get(user=user)
    assert record.last_used_at is not None
    user.is_active = False
    user.save()
    assert client_for(token=token).get("/api/v1/keys/").status_code == 401


def test_access_token_is_refused_by_the_relay_selector(user):
    """The relay authenticates only sq- secrets: a token never matches (the live test asks the relay itself)."""
    from apikeys.selectors import authenticate

    token = token_for(user)
    assert authenticate(token) is None


def test_dashboard_tokens_page_creates_shows_once_and_revokes(client, user, other_user):
    assert client.login(username=user.username, password=PASSWORD)
    page = client.get(reverse("tokens:list"))
    assert page.status_code == 200 and b"Create token" in page.content and b"API tokens" in page.content
    form_token = page.context["form"].initial["token"]
    r = client.post(reverse("tokens:list"), {"name": "reports", "expires": "30", "token": form_token})
    assert r.status_code == 302
    shown = client.get(reverse("tokens:list"))
    text = shown.context["reveal"]["token"]
    assert text.startswith("sqat-") and text.encode() in shown.content
    again = client.get(reverse("tokens:list"))
    assert (
        text.encode() not in again.content and text[:13].encode() in again.content
    )  # shown once; prefix stays
    record = AccessToken.objects.get(user=user)
    assert record.name == "reports" and record.expires_at > timezone.now() + timedelta(days=29)
    # A double submission of the same form creates nothing more.
    client.post(reverse("tokens:list"), {"name": "reports", "expires": "30", "token": form_token})
    assert AccessToken.objects.filter(user=user).count() == 1
    assert client_for(token=text).get("/api/v1/keys/").status_code == 200
    # Nobody else's token can be revoked from this account; its own can.
    foreign = tokens.do_create_access_token(user=other_user, name="theirs")[0]
    assert client.post(reverse("tokens:revoke", args=[foreign.pk])).status_code == 404
    assert client.get(reverse("tokens:revoke", args=[record.pk])).status_code == 200
    assert client.post(reverse("tokens:revoke", args=[record.pk])).status_code == 302
    assert client_for(token=text).get("/api/v1/keys/").status_code == 401
    listing = client.get(reverse("tokens:list")).content.decode()
    assert "Revoked" in listing
    # The nav links to the page.
    assert reverse("tokens:list") in client.get(reverse("apikeys:list")).content.decode()


def test_dashboard_tokens_page_validates(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    r = client.post(reverse("tokens:list"), {"name": "", "expires": "", "token": "forged"})
    assert r.status_code == 400 and not AccessToken.objects.exists()
    assert client.get(reverse("tokens:list")).status_code == 200
    client.logout()
    assert client.get(reverse("tokens:list")).status_code == 302  # to the login page
