"""Credits: prices, the cost of a request, exactly-once debits (also concurrent), the relay's credit check."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connections
from django.template import Context, Template
from django.urls import reverse

from sessions import credits, services
from sessions.models import CreditAccount, CreditGrant, Price, UsageEvent
from tests.factories import PASSWORD, UserFactory, make_key

from .conftest import on_postgres, usage

PII = {"agent_arch": "dual-llm", "content_classifiers": [{"name": "pii_redaction", "threshold": 0.5}]}


@pytest.fixture(autouse=True)
def _fresh_credit_cache():
    credits.forget_cached_credit()
    yield
    credits.forget_cached_credit()


@pytest.mark.django_db
def test_default_prices_and_key_price(user):
    table = credits.price_table()
    assert table.get("base") == Decimal("0.1") and table.get("dual-llm") == Decimal("0.2")
    assert table.get("single-llm") == Decimal("0.1") and table.get("pii_redaction") == Decimal("0.01")
    key, _ = make_key(user, "dual-llm", features=PII)
    total, rows = credits.key_price(key, table)
    assert total == Decimal("0.31") and [code for code, _, _ in rows] == ["base", "dual-llm", "pii_redaction"]


def test_cost_nano_is_exact():
    assert credits.cost_nano(1_000_000, Decimal("0.31")) == 310_000_000  # $0.31
    assert credits.cost_nano(1, Decimal("0.01")) == 10
    assert credits.cost_nano(3, Decimal("0.000001")) == 0  # 0.003 nano-dollars rounds to 0
    assert credits.cost_nano(0, Decimal("1")) == 0


@pytest.mark.django_db
def test_debit_once_per_request(user):
    key, _ = make_key(user, "dual-llm", features=PII)
    services.do_grant_credit(user=user, amount_usd=Decimal("1.00"))
    ev = usage(key, prompt_tokens=600_000, completion_tokens=400_000)  # 1M tokens × $0.31
    services.do_record_events([ev])
    services.do_record_events([ev])  # redelivered
    services.do_record_events([ev, ev])
    account = CreditAccount.objects.get(user=user)
    assert account.balance_nano == 1_000_000_000 - 310_000_000 and account.spent_nano == 310_000_000
    assert UsageEvent.objects.get().cost_nano == 310_000_000


@pytest.mark.django_db
def test_price_change_applies_to_later_requests(user):
    key, _ = make_key(user, "single-llm")
    Price.objects.filter(code="base").update(usd_per_million=Decimal("1"))
    services.do_record_events([usage(key, prompt_tokens=1_000_000, completion_tokens=0)])
    assert CreditAccount.objects.get(user=user).balance_nano == -1_100_000_000  # base 1 + single 0.1


def _run_threads(n, target):
    errors = []

    def wrapped(i):
        try:
            target(i)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_tasks_debit_exactly_once():
    """Eight workers deliver the same 40 events at the same time (retries, duplicate deliveries) plus 10 events
    each of their own: every event is stored once and the balance is debited once per event."""
    if not on_postgres():
        pytest.skip("needs PostgreSQL (row locks, concurrent transactions); CI runs it")
    user = UserFactory()
    key, _ = make_key(user, "dual-llm", features=PII)
    services.do_grant_credit(user=user, amount_usd=Decimal("100"))
    shared = [usage(key, prompt_tokens=1000, completion_tokens=1000) for _ in range(40)]
    own = [[usage(key, prompt_tokens=1000, completion_tokens=1000) for _ in range(10)] for _ in range(8)]
    barrier = threading.Barrier(8)

    def worker(i):
        barrier.wait()
        services.do_record_events(shared[i % 3 :] + own[i] + shared[: i % 3])  # different orders

    _run_threads(8, worker)
    n = 40 + 80
    assert UsageEvent.objects.count() == n
    account = CreditAccount.objects.get(user=user)
    per_event = credits.cost_nano(2000, Decimal("0.31"))
    assert account.spent_nano == n * per_event
    assert account.balance_nano == 100 * 10**9 - n * per_event
    from sessions.models import UsageRollup

    assert UsageRollup.objects.get(granularity="d").requests == n


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_debits_create_one_account():
    if not on_postgres():
        pytest.skip("needs PostgreSQL")
    user = UserFactory()
    key, _ = make_key(user, "single-llm")
    events = [usage(key, prompt_tokens=1_000_000, completion_tokens=0) for _ in range(6)]
    barrier = threading.Barrier(6)

    def worker(i):
        barrier.wait()
        services.do_record_events([events[i]])

    _run_threads(6, worker)
    assert CreditAccount.objects.get(user=user).balance_nano == -6 * 200_000_000


@pytest.mark.django_db
def test_check_credit_enforcement(user, settings):
    settings.CREDITS_ENFORCED = False
    assert asyncio.run(credits.acheck_credit(user.pk)) is None
    settings.CREDITS_ENFORCED = True
    settings.CREDITS_CACHE_SECONDS = 0
    message = credits.check_credit(user.pk)
    assert message and "Insufficient credit" in message and "$0.00" in message
    services.do_grant_credit(user=user, amount_usd=Decimal("0.50"), note="trial")
    assert credits.check_credit(user.pk) is None
    key, _ = make_key(user, "dual-llm")
    services.do_record_events([usage(key, prompt_tokens=2_000_000, completion_tokens=0)])  # $0.60 > $0.50
    assert "balance is $-0.10" in credits.check_credit(user.pk)


@pytest.mark.django_db(transaction=True)
def test_acheck_credit_is_cached_and_async(user, settings):
    settings.CREDITS_ENFORCED = True
    settings.CREDITS_CACHE_SECONDS = 30  # capped at 1 s
    services.do_grant_credit(user=user, amount_usd=Decimal("1"))

    async def twice():
        first = await credits.acheck_credit(user.pk)
        await sync_to_async(CreditAccount.objects.filter(pk=user.pk).update)(
            balance_nano=0
        )  # hidden by the cache
        return first, await credits.acheck_credit(user.pk)

    # async_to_sync: the async ORM's thread-sensitive calls run in this thread (whose connection is closed)
    assert async_to_sync(twice)() == (None, None)
    expires, _ = credits._CREDIT_CACHE[user.pk]
    assert expires - time.monotonic() <= 1.0


@pytest.mark.django_db
def test_admin_grant_credits_and_prices(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    customer = UserFactory()
    assert client.login(username=admin.username, password=PASSWORD)
    r = client.post(
        reverse("admin:agent_sessions_creditgrant_add"),
        {"user": customer.pk, "amount_usd": "25.00", "note": "welcome"},
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    assert CreditAccount.objects.get(user=customer).balance_nano == 25 * 10**9
    grant = CreditGrant.objects.get()
    assert grant.granted_by == admin
    # the ledger cannot be edited or deleted
    r = client.post(
        reverse("admin:agent_sessions_creditgrant_change", args=[grant.pk]),
        {"user": customer.pk, "amount_usd": "999", "note": "x"},
    )
    assert r.status_code == 403
    assert CreditAccount.objects.get(user=customer).balance_nano == 25 * 10**9
    for name in (
        "agent_sessions_price_changelist",
        "agent_sessions_creditaccount_changelist",
        "agent_sessions_relaysession_changelist",
        "agent_sessions_usageevent_changelist",
    ):
        assert client.get(reverse(f"admin:{name}")).status_code == 200


@pytest.mark.django_db
def test_credits_page(user_client, user, settings):
    settings.CREDITS_ENFORCED = True
    key, _ = make_key(user, "dual-llm", features=PII)
    r = user_client.get(reverse("dashboard:credits"))
    html = r.content.decode()
    assert r.status_code == 200 and 'id="no-credit"' in html and "$0.31" in html
    services.do_grant_credit(user=user, amount_usd=Decimal("10"), note="pilot")
    services.do_record_events([usage(key, prompt_tokens=1_000_000, completion_tokens=0)])
    html = user_client.get(reverse("dashboard:credits")).content.decode()
    assert 'id="no-credit"' not in html and "$9.69" in html and "pilot" in html and "$0.31" in html


@pytest.mark.django_db
def test_price_estimate_tag_renders():
    html = Template("{% load dashboard %}{% price_estimate %}").render(Context({}))
    assert 'id="price-estimate"' in html and '"dual-llm": 0.2' in html and "dashboard-price.js" in html
