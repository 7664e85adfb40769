"""Celery tasks: thin wrappers over ``sessions.services`` (idempotent by event id; never dropped).

``record_events`` is acknowledged late and requeued when its worker is lost (``acks_late``,
``reject_on_worker_lost``; in the settings too): with RabbitMQ, a worker killed mid-task has its message
redelivered as soon as its connection drops. When the database is down the message is not re-published
(which needs the broker, and would depend on it being up too) but handed back to the broker after a pause
(``Reject(requeue=True)``), so it waits there, durably, and is delivered again, to this or another worker,
until the database takes it. Redelivery, a requeue or a batch the relay published twice store nothing twice:
``sessions.services.do_record_events`` inserts by ``event_id`` and only new rows move the rollups, totals and
balances.
"""

import logging
import time

from celery import shared_task
from celery.exceptions import Reject
from django.db import DatabaseError, close_old_connections

from . import services

logger = logging.getLogger(__name__)

RETRY_PAUSE = 1.0  # seconds a worker waits before handing back a batch it could not store


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def record_events(self, events: list[dict]) -> int:
    """Store a batch of relay events (usage and session life); returns how many were new."""
    try:
        return services.do_record_events(events)
    except Exception as exc:
        if isinstance(exc, DatabaseError):
            logger.warning("database unavailable; %d log events go back to the queue (%s)", len(events), exc)
        else:  # a bug: keep the batch (it is retried, never dropped) and say so loudly
            logger.exception("storing %d log events failed; they go back to the queue", len(events))
        close_old_connections()
        time.sleep(RETRY_PAUSE)
        raise Reject(f"{type(exc).__name__}: {exc}", requeue=True) from None


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
)
def prune_log(self) -> dict:
    """Periodic (celery beat, ``CELERY_BEAT_SCHEDULE``): drop raw events and rollups past their retention."""
    return services.do_prune_log()
