"""Relay sessions (state to continue a conversation) and the usage log written by Celery tasks."""

import uuid

from django.db import models


class SessionStatus(models.TextChoices):
    OPEN = "open", "Open"
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    DENIED = "denied", "Denied"


class RelaySession(models.Model):
    """One conversation. ``state`` holds what the relay needs to continue it (history, pending tool calls,
    program and recorded tool results, session metadata); it is read and written by the relay itself."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid1, editable=False)
    api_key = models.ForeignKey("apikeys.ApiKey", on_delete=models.CASCADE, related_name="sessions")
    arch = models.CharField(max_length=16)
    endpoint_type = models.CharField(max_length=16)
    api = models.CharField(max_length=32)
    provider = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=SessionStatus.choices, default=SessionStatus.OPEN)
    turns = models.PositiveIntegerField(default=0)
    closed = models.BooleanField(default=False)
    state = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["api_key", "-created_at"])]

    def __str__(self) -> str:
        return str(self.id)


class UsageEvent(models.Model):
    """One relay request. ``event_id`` makes the Celery task idempotent (stored once, even on retry)."""

    event_id = models.UUIDField(unique=True)
    api_key = models.ForeignKey("apikeys.ApiKey", on_delete=models.CASCADE, related_name="usage_events")
    session_id = models.UUIDField(null=True, blank=True, db_index=True)
    endpoint_type = models.CharField(max_length=16)
    api = models.CharField(max_length=32)
    provider = models.CharField(max_length=32)
    arch = models.CharField(max_length=16, blank=True)
    models_used = models.CharField(max_length=300, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0)
    status_code = models.PositiveSmallIntegerField()
    error_kind = models.CharField(max_length=64, blank=True)
    streamed = models.BooleanField(default=False)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["api_key", "created_at"])]
