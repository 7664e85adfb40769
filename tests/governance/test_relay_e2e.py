"""Key governance through the live relay (uvicorn + the fake upstream): expiry, provider and model lists,
the key's stored provider credential, rate limits and budgets, streaming and disconnects.

The relay uses the store the settings choose (the database here, Redis when CACHE_URL is Redis, as in CI);
the test reads the same counters through ``apikeys.governance``.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from apikeys import crypto
from apikeys import governance as g
from apikeys.models import ApiKey
from sessions.models import Price, UsageEvent
from tests import fake_upstream as fu
from tests.factories import UserFactory, make_key

pytestmark = pytest.mark.live

CHAT = "/control/chat/v1/chat/completions"
BODY = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}


def governed_key(**fields) -> tuple[ApiKey, str]:
    key, secret = make_key(UserFactory(), arch="single-llm")
    ApiKey.objects.filter(pk=key.pk).update(**fields)
    key.refresh_from_db()
    store = g.make_store(g.store_setting())
    if isinstance(store, g.RedisStore):  # a test database's ids start again: forget an earlier run's counters
        client = store.sync_client()
        stale = list(client.scan_iter(match=f"gov:{{{key.pk}}}:*"))
        if stale:
            client.delete(*stale)
    return key, secret


def post(relay, secret, body=BODY, *, byok: str | None = "sk-client", path=CHAT, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret}"}
    if byok:
        headers["X-Api-Key"] = byok
    return httpx.post(relay + path, json=body, headers=headers, timeout=10, **kw)


def set_prices() -> None:
    # The seeded prices do not survive earlier transactional tests' flushes: set them (base + single = $0.20/1M).
    for code, kind in (("base", "base"), ("single-llm", "arch")):
        Price.objects.update_or_create(
            code=code, defaults={"kind": kind, "label": code, "usd_per_million": Decimal("0.10")}
        )


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_expired_key_401_says_it_expired(relay, fake_upstream):
    _, secret = governed_key(expires_at=timezone.now() - timedelta(minutes=1))
    r = post(relay, secret)
    assert r.status_code == 401 and "expired on" in r.json()["detail"], r.text
    assert fake_upstream.requests == []
    _, secret = governed_key(expires_at=timezone.now() + timedelta(days=1))
    assert post(relay, secret).status_code == 200


def test_models_and_providers_not_allowed_403_naming_them(relay, fake_upstream):
    _, secret = governed_key(allowed_models=["gpt-5-mini", "openai/*"], allowed_providers=["openrouter"])
    assert post(relay, secret).status_code == 200
    assert post(relay, secret, {**BODY, "model": "openai/gpt-4o"}).status_code == 200
    r = post(relay, secret, {**BODY, "model": "anthropic/claude-opus"})
    assert r.status_code == 403 and "Model 'anthropic/claude-opus' is not allowed" in r.json()["detail"]
    r = post(relay, secret, path="/control/chat/openai/v1/chat/completions")
    assert r.status_code == 403 and "Provider 'openai' is not allowed" in r.json()["detail"]
    assert len(fake_upstream.requests) == 2


def test_stored_provider_credential_order(relay, fake_upstream):
    """X-Api-Key on the request, then the key's stored credential, then the server-managed one."""
    from apikeys.services import do_set_provider_credential

    do_set_provider_credential(provider="openrouter", api_key="sk-server", allowed_models=["gpt-5-mini"])
    _, secret = governed_key(encrypted_provider_key=crypto.encrypt("sk-stored"))
    assert post(relay, secret, byok=None).status_code == 200
    assert fake_upstream.requests[-1].api_key == "sk-stored"
    assert post(relay, secret, byok="sk-header").status_code == 200
    assert fake_upstream.requests[-1].api_key == "sk-header"
    # A credential stored for another provider is not used here: the server's is (with its allow list).
    _, secret = governed_key(
        encrypted_provider_key=crypto.encrypt("sk-anthropic"), provider_key_provider="anthropic"
    )
    assert post(relay, secret, byok=None).status_code == 200
    assert fake_upstream.requests[-1].api_key == "sk-server"
    assert post(relay, secret, {**BODY, "model": "gpt-4o"}, byok=None).status_code == 403


def test_requests_per_minute_429_with_retry_after(relay, fake_upstream):
    _, secret = governed_key(rpm_limit=3)
    codes = [post(relay, secret) for _ in range(5)]
    # (a minute boundary in the middle would let a fourth through; then the fifth is the refused one)
    assert [r.status_code for r in codes].count(200) in (3, 4)
    refused = [r for r in codes if r.status_code == 429]
    assert refused and 1 <= int(refused[0].headers["retry-after"]) <= 60
    assert "3 requests per minute" in refused[0].json()["detail"]


def test_budget_402_names_the_budget_and_its_reset(relay, fake_upstream):
    set_prices()
    # 1M tokens at $0.20/1M = $0.20 per request; a daily budget of $0.50 serves 3 requests.
    key, secret = governed_key(budget_nano=500_000_000, budget_period="day")
    fake_upstream.reply = lambda req: fu.text("ok", usage=(600_000, 400_000))
    statuses = [post(relay, secret).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 402]
    r = post(relay, secret)
    detail = r.json()["detail"]
    assert r.status_code == 402 and "daily budget" in detail and "$0.50" in detail and "resets at" in detail
    assert 0 < int(r.headers["retry-after"]) <= 86400
    status = g.budget_statuses([key])[key.pk]
    assert status.used_nano == 600_000_000 and status.exhausted and status.over_soft


def test_streams_count_and_a_disconnect_cannot_escape(relay, fake_upstream):
    """Streamed requests are reserved and settled like any other: completed streams, streams dropped at their
    end marker and streams cut mid-way leave the key's counters exactly where the usage log (what the upstream
    reported, the metering of issue #12) says."""
    from tests.relay.test_metering_e2e import RawStream

    set_prices()
    key, secret = governed_key(rpm_limit=1000, tpm_limit=10**9, budget_nano=10**12, budget_period="month")
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    sids = []
    for i in range(6):
        fake_upstream.push(
            fu.text("one two three four five six seven eight", usage=(1000 + i, 100), chunk_delay=0.03)
        )
        s = RawStream(relay, CHAT, secret, body)
        assert s.status == 200
        if i % 3 == 0:
            s.read_until(b"data: [DONE]")  # the strictest client: drops the connection at the end marker
        elif i % 3 == 1:
            s.read_events(2)  # cut mid-way: the upstream had not reported its usage yet
        else:
            s.read_until(b"0\r\n\r\n")
        s.drop()
        sids.append(s.headers["x-session-id"])
    # (the rows come through the journal, the broker and the worker, which may still be busy with earlier
    # tests' batches in CI: wait for them as long as the metering tests do, and longer)
    assert wait_for(lambda: UsageEvent.objects.filter(session_id__in=sids).count() == 6, timeout=60.0), list(
        UsageEvent.objects.filter(session_id__in=sids).values_list("session_id", "status_code")
    )
    time.sleep(0.3)
    rows = list(UsageEvent.objects.filter(api_key=key))
    assert len(rows) == 6 and any(r.status_code == 499 for r in rows)
    tokens = sum(r.prompt_tokens + r.completion_tokens for r in rows)
    cost = sum(r.cost_nano for r in rows)
    now = time.time()
    p = g.budget_period("month", now)
    m = g.minute(now)
    live = g.make_store(g.store_setting()).read_many(
        [(key.pk, "r", m), (key.pk, "t", m), (key.pk, "t", m - 1), (key.pk, "b", p.id)], now
    )
    assert live[(key.pk, "b", p.id)] == cost
    assert (live[(key.pk, "t", m)] or 0) + (live[(key.pk, "t", m - 1)] or 0) == tokens
