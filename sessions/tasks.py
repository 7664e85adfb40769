"""Celery tasks: thin wrappers over ``sessions.services`` (retried; idempotent by event id)."""

from celery import shared_task

from . import services


@shared_task(bind=True, autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=60, max_retries=None)
def record_events(self, events: list[dict]) -> int:
    """Store a batch of relay events (usage and session life); returns how many were new."""
    return services.do_record_events(events)


@shared_task(bind=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def prune_log(self) -> dict:
    """Periodic (celery beat, ``CELERY_BEAT_SCHEDULE``): drop raw events and rollups past their retention."""
    return services.do_prune_log()
