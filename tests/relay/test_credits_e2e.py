"""Credit enforcement through the live relay: 402 without credit, served with it, debited once."""

import time
from decimal import Decimal

import httpx
import pytest

from sessions.models import CreditAccount, UsageEvent
from sessions.services import do_grant_credit
from tests import fake_upstream as fu
from tests.factories import UserFactory, make_key

pytestmark = pytest.mark.live


def test_402_without_credit_then_served_and_debited(
    transactional_db, fake_upstream_server, artifacts_dir, celery_worker_process
):
    from sessions.models import Price
    from tests.conftest import _relay_env
    from tests.live import start_uvicorn

    # The seeded prices (a data migration) do not survive earlier transactional tests' flushes: set them.
    for code, kind in (("base", "base"), ("single-llm", "arch")):
        Price.objects.update_or_create(
            code=code, defaults={"kind": kind, "label": code, "usd_per_million": Decimal("0.10")}
        )
    user = UserFactory()
    _, secret = make_key(user, arch="single-llm")
    relay = start_uvicorn(
        {**_relay_env(fake_upstream_server), "CREDITS_ENFORCED": "1", "CREDITS_CACHE_SECONDS": "0"},
        log_dir=artifacts_dir,
    )
    try:
        headers = {"Authorization": f"Bearer {secret}", "X-Api-Key": "k"}
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        r = httpx.post(f"{relay.url}/control/chat/v1/chat/completions", json=body, headers=headers)
        assert r.status_code == 402 and "credit" in r.json()["detail"].lower()
        do_grant_credit(user=user, amount_usd=Decimal("5.00"))
        fake_upstream_server.push(fu.text("paid", usage=(600_000, 400_000)))
        r = httpx.post(f"{relay.url}/control/chat/v1/chat/completions", json=body, headers=headers)
        assert r.status_code == 200, r.text
        sid = r.headers["x-session-id"]
        deadline = time.monotonic() + 20
        while not UsageEvent.objects.filter(session_id=sid).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        event = UsageEvent.objects.get(session_id=sid)
        balance = CreditAccount.objects.get(pk=user.pk).balance_nano
        # 1M tokens at base $0.10 + Single LLM $0.10 = $0.20, debited exactly once.
        assert event.cost_nano == 200_000_000
        assert balance == 5_000_000_000 - 200_000_000
    finally:
        relay.stop()
