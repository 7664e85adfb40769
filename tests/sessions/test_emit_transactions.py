"""Events emitted inside a database transaction reach the journal only when it commits (never on rollback);
outside one they are appended at once, also in a running event loop (where the check asks no connection)."""

from __future__ import annotations

import asyncio

import pytest
from django.db import connection, transaction

from sessions import emit as log


@pytest.mark.django_db
def test_inside_a_transaction_events_wait_for_its_commit(django_capture_on_commit_callbacks):
    # (the test runs inside a transaction of its own: what it emits is only queued for the commit)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert log._in_atomic_block()
        log.emit("usage", status_code=200)
        log.emit_many([("session", {"status": "open"}), ("usage", {"status_code": 200})])
    assert len(callbacks) == 2  # one per call: appended when (and only if) the transaction commits


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_there_is_nothing_to_wait_for():
    connection.ensure_connection()  # a connection that exists, outside any transaction
    assert not log._in_atomic_block()
    with transaction.atomic():
        assert log._in_atomic_block()
    assert not log._in_atomic_block()


def test_in_a_running_event_loop_there_is_no_transaction_to_wait_for():
    async def check() -> bool:
        return log._in_atomic_block()

    assert asyncio.run(check()) is False
