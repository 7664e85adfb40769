"""Requests through the live relay with a real Celery worker and Redis: rows, charts, nothing lost."""

import os
import time
import uuid

import httpx
import pytest
from django.urls import reverse

from sessions.models import RelaySession, UsageEvent
from tests import fake_upstream as fu
from tests.factories import PASSWORD, UserFactory, make_key

pytestmark = [
    pytest.mark.live,
    pytest.mark.worker,
    pytest.mark.skipif(
        not os.environ.get("CELERY_BROKER_URL"),
        reason="needs CELERY_BROKER_URL (a real broker); .ci/run sets it",
    ),
]


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_worker_down_then_up_loses_nothing(transactional_db, fake_upstream_server, artifacts_dir, client):
    from tests.conftest import _relay_env
    from tests.live import start_celery_worker, start_uvicorn

    queue = f"relaytest-{uuid.uuid4().hex[:8]}"
    user = UserFactory()
    _, secret = make_key(user, arch="single-llm")
    relay = start_uvicorn(
        {**_relay_env(fake_upstream_server), "CELERY_TASK_DEFAULT_QUEUE": queue}, log_dir=artifacts_dir
    )
    worker = None
    try:
        headers = {"Authorization": f"Bearer {secret}", "X-Api-Key": "k"}
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        sids = set()
        for _ in range(5):  # no worker consumes this queue yet
            fake_upstream_server.push(fu.text("ok"))
            r = httpx.post(f"{relay.url}/control/chat/v1/chat/completions", json=body, headers=headers)
            assert r.status_code == 200
            sids.add(r.headers["x-session-id"])
        time.sleep(1.0)
        assert UsageEvent.objects.filter(session_id__in=sids).count() == 0  # waiting in Redis
        worker = start_celery_worker({"CELERY_TASK_DEFAULT_QUEUE": queue}, log_dir=artifacts_dir)
        assert wait_for(lambda: UsageEvent.objects.filter(session_id__in=sids).count() == 5)
        assert wait_for(lambda: RelaySession.objects.filter(id__in=sids).count() == 5)
        # ... and the dashboard shows them.
        assert client.login(username=user.username, password=PASSWORD)
        page = client.get(reverse("dashboard:overview"), {"range": "24h"})
        assert page.status_code == 200
        sessions_page = client.get(reverse("dashboard:sessions"))
        assert all(sid[:8] in sessions_page.content.decode() for sid in sids)
    finally:
        relay.stop()
        if worker is not None:
            worker.stop()
