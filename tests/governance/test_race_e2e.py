"""Race-free limits: 32 concurrent clients on 2 uvicorn workers hammer one key (issue #16).

A budget that allows 100 requests serves at most 100 + the requests in flight when it is crossed (at most
32), and never fewer than 100; a limit of 100 requests per minute serves exactly 100 in the minute; a
limit of 100 requests' worth of tokens per minute serves between 100 and 132. Each test prints the exact
figures. Run against the database store (SQLite here, PostgreSQL in CI) and Redis (when reachable).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter

import httpx
import pytest

from apikeys import governance as g
from tests import fake_upstream as fu
from tests.governance.test_relay_e2e import BODY, CHAT, governed_key, set_prices

pytestmark = pytest.mark.live

CLIENTS = 32
TOTAL = 320  # requests sent by the 32 clients together
REDIS_URL = "redis://127.0.0.1:6379/8"
COST = 19 * 200  # the fake upstream reports 12 + 7 tokens; $0.20 per 1M tokens = 200 nano-dollars a token


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module", params=["database", "redis"])
def two_workers(request, django_db_setup, django_db_blocker, fake_upstream_server, artifacts_dir):
    from tests.conftest import _relay_env
    from tests.live import start_uvicorn

    if request.param == "redis":
        if not _redis_up():
            pytest.skip("no Redis on 127.0.0.1:6379")
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        spec = REDIS_URL
    else:
        spec = "database"
    with django_db_blocker.unblock():
        live = start_uvicorn(
            {**_relay_env(fake_upstream_server), "RELAY_GOVERNANCE_STORE": spec},
            workers=2,
            log_dir=artifacts_dir,
        )
    live.extra["store"] = spec
    yield live
    live.stop()


async def _hammer(url: str, secret: str, body: dict) -> tuple[Counter, list[httpx.Response], int]:
    """TOTAL requests from CLIENTS concurrent clients; (status counts, refused responses, max in flight)."""
    statuses: Counter = Counter()
    refused: list[httpx.Response] = []
    sent = 0
    in_flight = max_in_flight = 0
    headers = {"Authorization": f"Bearer {secret}", "X-Api-Key": "sk-client"}

    async def client() -> None:
        nonlocal sent, in_flight, max_in_flight
        async with httpx.AsyncClient(timeout=60) as http:
            while sent < TOTAL:
                sent += 1
                in_flight += 1
                max_in_flight = max(max_in_flight, in_flight)
                try:
                    r = await http.post(url + CHAT, json=body, headers=headers)
                finally:
                    in_flight -= 1
                statuses[r.status_code] += 1
                if r.status_code != 200 or (body.get("stream") and b"[DONE]" not in r.content):
                    refused.append(r)  # (a 200 here: a stream that did not end properly)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return statuses, refused, max_in_flight


def _start_early_in_a_minute(budget_seconds: float = 20) -> None:
    """Rate windows are UTC minutes: start where the whole run fits in one."""
    left = 60 - time.time() % 60
    if left < budget_seconds:
        time.sleep(left + 0.05)


def test_budget_for_100_requests(two_workers, fake_upstream, transactional_db):
    set_prices()
    key, secret = governed_key(budget_nano=100 * COST, budget_period="day")
    fake_upstream.reply = lambda req: fu.text("ok", delay=0.02)  # keeps requests in flight
    started = time.monotonic()
    statuses, refused, in_flight = asyncio.run(_hammer(two_workers.url, secret, BODY))
    served = statuses[200]
    print(
        f"\n[{two_workers.extra['store']}] budget for 100 requests, {CLIENTS} clients on 2 workers, {TOTAL} sent: "
        f"served {served} (over by {served - 100}), refused {statuses[402]} with 402, "
        f"max {in_flight} in flight, {time.monotonic() - started:.1f} s"
    )
    assert set(statuses) <= {200, 402}, statuses
    assert 100 <= served <= 100 + CLIENTS
    assert all(
        "budget" in r.json()["detail"] and "resets at" in r.json()["detail"]
        for r in refused
        if r.status_code == 402
    )
    time.sleep(0.3)  # the last settlements are written without waiting for them
    period = g.budget_period("day", time.time()).id
    used = g.make_store(two_workers.extra["store"]).read_many([(key.pk, "b", period)])[(key.pk, "b", period)]
    assert used == served * COST  # every reservation settled at its actual cost


def test_requests_per_minute_100(two_workers, fake_upstream, transactional_db):
    key, secret = governed_key(rpm_limit=100)
    fake_upstream.reply = lambda req: fu.text("ok", delay=0.02)
    _start_early_in_a_minute()
    window = g.minute(time.time())
    statuses, refused, in_flight = asyncio.run(_hammer(two_workers.url, secret, BODY))
    windows = g.minute(time.time()) - window + 1
    served = statuses[200]
    print(
        f"\n[{two_workers.extra['store']}] 100 requests per minute, {CLIENTS} clients on 2 workers, {TOTAL} sent: "
        f"served {served}, refused {statuses[429]} with 429, max {in_flight} in flight, {windows} minute(s)"
    )
    assert set(statuses) <= {200, 429}, statuses
    assert served == 100 if windows == 1 else 100 <= served <= 100 * windows
    assert all(1 <= int(r.headers["retry-after"]) <= 60 for r in refused if r.status_code == 429)


def test_tokens_per_minute_for_100_requests(two_workers, fake_upstream, transactional_db):
    key, secret = governed_key(tpm_limit=100 * 19)
    fake_upstream.reply = lambda req: fu.text("ok", delay=0.02)
    _start_early_in_a_minute()
    window = g.minute(time.time())
    statuses, refused, in_flight = asyncio.run(_hammer(two_workers.url, secret, {**BODY, "stream": True}))
    windows = g.minute(time.time()) - window + 1
    # A stream the upstream broke off (a timeout on a loaded machine) used no tokens and does not count.
    broken = sum(1 for r in refused if r.status_code == 200)
    served = statuses[200] - broken
    print(
        f"\n[{two_workers.extra['store']}] 1,900 tokens (100 requests) per minute, streamed, {CLIENTS} clients on "
        f"2 workers, {TOTAL} sent: served {served} (over by {served - 100}), refused {statuses[429]} with 429, "
        f"{broken} streams broken off upstream, max {in_flight} in flight, {windows} minute(s)"
    )
    assert set(statuses) <= {200, 429}, statuses
    # (the estimate of a request in flight may exceed its actual tokens: a refusal then can come a little early)
    assert windows > 1 or 100 - CLIENTS <= served <= 100 + CLIENTS
    assert all("tokens per minute" in r.json()["detail"] for r in refused if r.status_code == 429)
