"""Writes of the session/usage log. Celery tasks call these; they are idempotent by event id."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apikeys.models import ApiKey

from .models import UsageEvent


def do_record_usage_event(event: dict) -> bool:
    """Store one usage event unless its ``event_id`` is already stored; returns whether it was new."""
    created_at = event.get("created_at")
    created_at = datetime.fromisoformat(created_at) if created_at else timezone.now()
    with transaction.atomic():
        _, created = UsageEvent.objects.get_or_create(
            event_id=uuid.UUID(event["event_id"]),
            defaults={
                "api_key_id": event["key_id"],
                "session_id": event.get("session_id"),
                "endpoint_type": event.get("endpoint_type", ""),
                "api": event.get("api", ""),
                "provider": event.get("provider", ""),
                "arch": event.get("arch", ""),
                "models_used": ",".join(event.get("models") or [])[:300],
                "prompt_tokens": int(event.get("prompt_tokens") or 0),
                "completion_tokens": int(event.get("completion_tokens") or 0),
                "latency_ms": float(event.get("latency_ms") or 0),
                "status_code": int(event.get("status_code") or 0),
                "error_kind": event.get("error_kind") or "",
                "streamed": bool(event.get("streamed")),
                "created_at": created_at,
            },
        )
        if created:
            ApiKey.objects.filter(pk=event["key_id"]).update(last_used_at=created_at)
    return created


def do_record_events(events: list[dict]) -> int:
    """Store a batch of events by kind; each is idempotent by its ``event_id``."""
    new = 0
    for event in events:
        if event.get("kind") == "usage":
            new += do_record_usage_event(event)
    return new
