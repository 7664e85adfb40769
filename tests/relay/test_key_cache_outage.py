"""Keys and server credentials through a brief database outage (issue #18 item 5): an entry read within
``RELAY_KEY_STALE_SECONDS`` keeps being served when refreshing it fails (stale-while-error), the database is
asked again once per cache period only; anything else (an unknown key, a revoked one, an entry too old)
still raises, which the relay answers as a JSON 503 with ``Retry-After``."""

from __future__ import annotations

import asyncio

import pytest
from django.db import OperationalError

from apikeys import selectors
from apikeys.models import ProviderCredential
from tests.factories import UserFactory, make_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_caches(settings):
    settings.RELAY_KEY_CACHE_SECONDS = 0
    settings.RELAY_KEY_STALE_SECONDS = 60
    selectors._KEY_CACHE.clear()
    selectors._CRED_CACHE.clear()
    yield
    selectors._KEY_CACHE.clear()
    selectors._CRED_CACHE.clear()


class Outage:
    """``run_sync`` as it behaves with the database gone; counts the attempts."""

    def __init__(self):
        self.calls = 0

    async def __call__(self, fn, *args):
        self.calls += 1
        raise OperationalError("server closed the connection unexpectedly")


def auth(secret):
    return asyncio.run(selectors.aauthenticate(secret))


def test_a_recently_seen_key_is_served_while_the_database_is_away(monkeypatch, settings, caplog):
    key, secret = make_key(UserFactory(), arch="single-llm")
    _, unseen = make_key(UserFactory(), arch="single-llm")
    assert auth(secret).id == key.pk
    outage = Outage()
    monkeypatch.setattr(selectors, "run_sync", outage)
    settings.RELAY_KEY_CACHE_SECONDS = 30  # the retry period while serving stale
    assert auth(secret).id == key.pk
    assert auth(secret).id == key.pk
    assert outage.calls == 1  # asked once, then the stale entry is re-armed for one cache period
    assert auth(secret[:-1] + ("a" if secret[-1] != "a" else "b")) is None  # the secret is still checked
    with pytest.raises(OperationalError):
        auth(unseen)  # never seen: no answer without the database
    assert "served from the cache (stale)" in caplog.text


def test_the_stale_window_ends(monkeypatch, settings):
    settings.RELAY_KEY_STALE_SECONDS = 0
    key, secret = make_key(UserFactory(), arch="single-llm")
    assert auth(secret) is not None
    monkeypatch.setattr(selectors, "run_sync", Outage())
    with pytest.raises(OperationalError):
        auth(secret)


def test_a_revoked_key_is_never_served_stale(monkeypatch):
    from apikeys import services

    key, secret = make_key(UserFactory(), arch="single-llm")
    services.do_revoke_api_key(key=key)
    assert auth(secret) is None
    monkeypatch.setattr(selectors, "run_sync", Outage())
    with pytest.raises(OperationalError):
        auth(secret)  # a negative entry is not an answer during an outage


def test_server_credentials_are_served_stale_too(monkeypatch):
    from apikeys import crypto

    ProviderCredential.objects.create(
        provider="openrouter",
        encrypted_api_key=crypto.encrypt("sk-server"),
        allowed_models=["openai/gpt-5-mini"],
        enabled=True,
    )
    cred = asyncio.run(selectors.aget_server_credential("openrouter"))
    assert cred.api_key == "sk-server"
    selectors._CRED_CACHE["openrouter"] = (0.0, *selectors._CRED_CACHE["openrouter"][1:])  # expired
    monkeypatch.setattr(selectors, "run_sync", Outage())
    assert asyncio.run(selectors.aget_server_credential("openrouter")).api_key == "sk-server"
    with pytest.raises(OperationalError):
        asyncio.run(selectors.aget_server_credential("anthropic"))
