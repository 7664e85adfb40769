"""A real Celery worker against the real broker (Redis in CI): events emitted through ``sessions.emit`` reach
the database; nothing is lost while the worker is down (Redis keeps the messages) or while the broker is down
(the local spool keeps them).

Each test uses its own queue (``CELERY_TASK_DEFAULT_QUEUE``), so other runs sharing the broker cannot take
its messages.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from sessions import emit as log
from sessions.models import RelaySession, SessionEvent, UsageEvent
from tests.factories import UserFactory, make_key
from tests.live import start_celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.timeout(240)]


@pytest.fixture
def queue():
    if not (os.environ.get("CELERY_BROKER_URL") and settings.CELERY_BROKER_URL):
        pytest.skip("needs CELERY_BROKER_URL (a real broker); .ci/run sets it")
    from sequrity_site.celery import app

    name = f"test-log-{uuid.uuid4().hex[:12]}"
    log.flush()  # whatever this process buffered before goes to the usual queue, not this test's
    before = app.conf.task_default_queue
    app.conf.task_default_queue = name
    yield name
    app.conf.task_default_queue = before
    try:  # drop whatever a failed test left behind
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(name)
    except Exception:  # noqa: BLE001
        pass


@pytest.fixture
def spool(tmp_path, settings):
    settings.LOG_SPOOL_DIR = tmp_path / "spool"
    log.flush()  # nothing of another test's buffer leaks into this one
    return settings.LOG_SPOOL_DIR


@pytest.fixture
def key(transactional_db):
    return make_key(UserFactory(), "dual-llm")[0]


@pytest.fixture
def log_dir(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    return d


def emit_sessions(key, n: int) -> None:
    """What the relay emits per request of a new session: the row, a step, the usage."""
    for i in range(n):
        sid = str(uuid.uuid1())
        log.emit(
            "session",
            session_id=sid,
            key_id=key.pk,
            arch="dual-llm",
            endpoint_type="chat",
            api="chat",
            provider="openrouter",
            status="success",
            turns=1,
            closed=False,
            models=["openai/gpt-5-mini"],
        )
        log.emit(
            "session_event",
            session_id=sid,
            key_id=key.pk,
            turn=1,
            seq=1,
            type="user_message",
            data={"text": f"question {i}"},
        )
        log.emit(
            "usage",
            key_id=key.pk,
            session_id=sid,
            endpoint_type="chat",
            api="chat",
            provider="openrouter",
            arch="dual-llm",
            models=["openai/gpt-5-mini"],
            prompt_tokens=100,
            completion_tokens=20,
            latency_ms=250.0,
            status_code=200,
            error_kind="",
            streamed=False,
        )


def counts() -> tuple[int, int, int]:
    return UsageEvent.objects.count(), RelaySession.objects.count(), SessionEvent.objects.count()


def wait_for_counts(expected: int, timeout: float = 60.0) -> tuple[int, int, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = counts()
        if got == (expected, expected, expected):
            return got
        time.sleep(0.2)
    return counts()


def spooled(directory) -> int:
    """Events in the spool files (read under the flush lock, so the background flusher is not mid-way)."""
    with log._flush_lock:
        lines = [
            json.loads(line)
            for f in Path(directory).glob("events-*.jsonl")
            for line in f.read_text().splitlines()
            if line.strip()
        ]
    assert {e["kind"] for e in lines} <= {"session", "session_event", "usage"}
    return len(lines)


def queued(name: str) -> int:
    """Messages waiting in a queue (RabbitMQ: ready ones; Redis: the list's length)."""
    from sequrity_site.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        if conn.transport.driver_type == "redis":
            return channel.client.llen(name)
        try:
            return channel.queue_declare(name, passive=True).message_count
        except Exception:  # noqa: BLE001 - no such queue (yet)
            return 0


def test_worker_stores_events_and_nothing_is_lost_while_it_is_down(key, queue, spool, log_dir):
    env = {"CELERY_TASK_DEFAULT_QUEUE": queue}
    worker = start_celery_worker(env, log_dir=log_dir)
    try:
        emit_sessions(key, 10)
        assert log.flush() >= 0
        assert wait_for_counts(10) == (10, 10, 10), worker.log()
    finally:
        worker.stop()

    # worker down: requests go on; the events wait in the broker
    emit_sessions(key, 15)
    log.flush()
    time.sleep(1.0)
    assert counts() == (10, 10, 10)
    assert queued(queue) >= 1

    worker = start_celery_worker(env, log_dir=log_dir)
    try:
        assert wait_for_counts(25) == (25, 25, 25), worker.log()
        assert queued(queue) == 0
    finally:
        worker.stop()
    assert "Traceback" not in worker.log()


def test_broker_down_spools_then_delivers(key, queue, spool, log_dir, monkeypatch):
    from sequrity_site.celery import app
    from sessions.tasks import record_events

    real_publish = log._publish

    def dead_broker_publish(batch):
        # a real publish, to a port where no broker listens
        with app.connection_for_write("redis://127.0.0.1:9/0") as conn:
            record_events.apply_async(args=[batch], connection=conn, retry=False)

    worker = start_celery_worker({"CELERY_TASK_DEFAULT_QUEUE": queue}, log_dir=log_dir)
    try:
        monkeypatch.setattr(log, "_publish", dead_broker_publish)
        emit_sessions(key, 12)
        log.flush()
        assert spooled(spool) == 36
        emit_sessions(key, 3)  # still down: appended to the spool
        log.flush()
        assert spooled(spool) == 45
        time.sleep(0.5)
        assert counts() == (0, 0, 0)

        monkeypatch.setattr(log, "_publish", real_publish)  # the broker is back
        log.flush()
        assert wait_for_counts(15) == (15, 15, 15), worker.log()
        assert spooled(spool) == 0
    finally:
        worker.stop()


def test_redelivered_batch_is_stored_once(key, queue, spool, log_dir):
    """The same batch published twice (e.g. a crash between publish and spool truncation) counts once."""
    from sessions.tasks import record_events

    batch = [
        log.new_event(
            "usage",
            key_id=key.pk,
            session_id=None,
            endpoint_type="chat",
            api="chat",
            provider="openrouter",
            arch="dual-llm",
            models=["m"],
            prompt_tokens=1,
            completion_tokens=1,
            latency_ms=1.0,
            status_code=200,
            error_kind="",
            streamed=False,
        )
        for _ in range(5)
    ]
    record_events.delay(batch)
    record_events.delay(batch)
    worker = start_celery_worker({"CELERY_TASK_DEFAULT_QUEUE": queue}, log_dir=log_dir)
    try:
        deadline = time.monotonic() + 60
        while queued(queue) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        assert UsageEvent.objects.count() == 5
    finally:
        worker.stop()
