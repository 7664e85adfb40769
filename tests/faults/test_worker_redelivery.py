"""RabbitMQ delivers a task again as soon as the worker that held it dies (issue #18 item 3): a worker killed
with SIGKILL in the middle of a batch (blocked on a table lock this test holds) has its message back in the
queue at once, and the next worker stores the batch, once, in seconds (with Redis as the broker it waited for
the visibility timeout: an hour). Needs a RabbitMQ broker (``.ci/run``) and PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
from django.conf import settings
from django.db import connection, transaction

from sessions import emit as log
from sessions.models import UsageEvent
from tests.factories import UserFactory, make_key
from tests.live import start_celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.timeout(240)]


@pytest.fixture
def queue():
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not (url and settings.CELERY_BROKER_URL):
        pytest.skip("needs CELERY_BROKER_URL (a real broker); .ci/run sets it")
    if not url.startswith(("amqp", "pyamqp")):
        pytest.skip("redelivery on a worker's death is RabbitMQ's (CELERY_BROKER_URL=amqp://...)")
    if connection.vendor != "postgresql":
        pytest.skip("holds a PostgreSQL table lock")
    from sequrity_site.celery import app

    name = f"test-redeliver-{uuid.uuid4().hex[:12]}"
    log.flush()
    before = app.conf.task_default_queue
    app.conf.task_default_queue = name
    yield name
    app.conf.task_default_queue = before
    try:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(name)
    except Exception:  # noqa: BLE001
        pass


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_a_killed_workers_task_is_redelivered_at_once_and_stored_once(transactional_db, queue, tmp_path):
    from sessions.tasks import record_events

    key = make_key(UserFactory(), "single-llm")[0]
    batch = [
        log.new_event(
            "usage",
            key_id=key.pk,
            session_id=None,
            endpoint_type="chat",
            api="chat",
            provider="openrouter",
            arch="single-llm",
            models=["m"],
            prompt_tokens=2,
            completion_tokens=1,
            latency_ms=1.0,
            status_code=200,
            error_kind="",
            streamed=False,
        )
        for _ in range(20)
    ]
    env = {"CELERY_TASK_DEFAULT_QUEUE": queue}
    first = start_celery_worker(env, log_dir=tmp_path)
    second = None
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {UsageEvent._meta.db_table} IN ACCESS EXCLUSIVE MODE")
            record_events.delay(batch)
            # the worker took the task and waits on the lock, its message unacknowledged
            assert _wait(lambda: "record_events" in first.log() and "received" in first.log(), 30), (
                first.log()
            )
            time.sleep(0.5)
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(timeout=10)
            second = start_celery_worker(env, log_dir=tmp_path)
        started = time.monotonic()  # the lock is released: the redelivered batch goes through
        assert _wait(lambda: UsageEvent.objects.filter(api_key=key).count() == 20, 30), second.log()
        assert time.monotonic() - started < 30
        time.sleep(1.0)
        assert UsageEvent.objects.filter(api_key=key).count() == 20  # stored once
        assert "record_events" in second.log()
    finally:
        first.stop()
        if second is not None:
            second.stop()
