"""The session/usage log (written by Celery tasks from relay events), hourly/daily rollups, prices and credits.

Relay session *state* lives in the shared cache (relay/session_store.py); ``RelaySession`` is only the log
row of a session, upserted from the relay's ``session`` events (see ``services.do_record_events``).
Money is stored as integer nano-dollars (1e-9 USD) so that debits are exact integer ``F()`` updates on
every database (SQLite would do decimal arithmetic in floating point).
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from .histogram import LATENCY_FIELDS

NANO_PER_USD = 10**9


def nano_to_usd(nano: int | None) -> Decimal:
    return (Decimal(nano or 0) / NANO_PER_USD).quantize(Decimal("0.000001"))


class SessionStatus(models.TextChoices):
    OPEN = "open", "Open"
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    DENIED = "denied", "Denied"
    ERROR = (
        "error",
        "Error",
    )  # the last request failed (HTTP error: no credential, upstream 5xx/429, timeout...)


# Shown for sessions, not stored: an open session without activity for SESSION_IDLE_DISPLAY_SECONDS.
IDLE = "idle"
DISPLAY_LABELS = {**dict(SessionStatus.choices), IDLE: "Idle"}


def idle_cutoff():
    return timezone.now() - timezone.timedelta(seconds=settings.SESSION_IDLE_DISPLAY_SECONDS)


class RelaySession(models.Model):
    """One conversation as logged: its configuration, status and totals. The relay's ``session`` events
    upsert it (the latest by ``state_at`` wins); usage events add to its totals."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid1, editable=False)
    api_key = models.ForeignKey("apikeys.ApiKey", on_delete=models.CASCADE, related_name="sessions")
    arch = models.CharField(max_length=16, blank=True)
    endpoint_type = models.CharField(max_length=16, blank=True)
    api = models.CharField(max_length=32, blank=True)
    provider = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, choices=SessionStatus.choices, default=SessionStatus.OPEN)
    turns = models.PositiveIntegerField(default=0)
    closed = models.BooleanField(default=False)
    # Why the status is "error" (the failed request's message), empty otherwise.
    status_reason = models.CharField(max_length=500, blank=True, default="")
    model_names = models.JSONField(default=list, blank=True)
    requests = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost_nano = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_activity = models.DateTimeField(default=timezone.now, db_index=True)
    # created_at of the ``session`` event whose state this row shows (None: only seen through other events).
    state_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["api_key", "-created_at"]),
            models.Index(fields=["status", "-created_at"]),
        ]

    def __str__(self) -> str:
        return str(self.id)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def display_status(self) -> str:
        """The status as shown: an open session nobody continued for a while is idle, not open."""
        if self.status == SessionStatus.OPEN and not self.closed and self.last_activity < idle_cutoff():
            return IDLE
        return self.status

    @property
    def display_status_label(self) -> str:
        return DISPLAY_LABELS.get(self.display_status, self.display_status)


class SessionEvent(models.Model):
    """One step of a session (message, program, tool call and its verdict, tool result, LLM call...)."""

    event_id = models.UUIDField(unique=True)
    session = models.ForeignKey(RelaySession, on_delete=models.CASCADE, related_name="events")
    turn = models.PositiveIntegerField(default=0)
    seq = models.PositiveIntegerField(default=0)
    type = models.CharField(max_length=32)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["session", "seq", "created_at"]
        indexes = [models.Index(fields=["session", "seq"])]

    def __str__(self) -> str:
        return f"{self.session_id} #{self.seq} {self.type}"


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
    model = models.CharField(max_length=200, blank=True, help_text="The main (planner) model.")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0)
    status_code = models.PositiveSmallIntegerField()
    error_kind = models.CharField(max_length=64, blank=True)
    streamed = models.BooleanField(default=False)
    cost_nano = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["api_key", "created_at"])]

    @property
    def __str__(self) -> str:
        return f"{self.event_id} {self.status_code}"

    def is_error(self) -> bool:
        return self.status_code >= 400


class Granularity(models.TextChoices):
    HOUR = "h", "Hour"
    DAY = "d", "Day"


class UsageRollup(models.Model):
    """Usage summed per (granularity, bucket start, key, model); the overview and credits pages read these.

    ``lat_00``... are a latency histogram (bucket edges in ``sessions.histogram``) from which medians and
    p95s over any set of rows are estimated in SQL-summed form.
    """

    granularity = models.CharField(max_length=1, choices=Granularity.choices)
    bucket = models.DateTimeField()
    api_key = models.ForeignKey("apikeys.ApiKey", on_delete=models.CASCADE, related_name="usage_rollups")
    model = models.CharField(max_length=200, blank=True)
    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)
    cost_nano = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "granularity", "bucket", "model"], name="usage_rollup_unique"
            ),
        ]
        indexes = [models.Index(fields=["granularity", "bucket"])]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket:%Y-%m-%d %H:00} key={self.api_key_id} {self.model}"


for _name in LATENCY_FIELDS:  # 24 histogram counters, kept out of the class body for readability
    UsageRollup.add_to_class(_name, models.PositiveIntegerField(default=0))


class PriceKind(models.TextChoices):
    BASE = "base", "Base"
    ARCH = "arch", "Architecture"
    DEFENCE = "defence", "Defence"


class Price(models.Model):
    """Price per million tokens of one component: the base, an architecture, or an enabled defence."""

    code = models.CharField(
        max_length=64,
        unique=True,
        help_text='"base", an architecture ("single-llm") or a defence ("pii_redaction").',
    )
    kind = models.CharField(max_length=16, choices=PriceKind.choices)
    label = models.CharField(max_length=100)
    usd_per_million = models.DecimalField("USD per 1M tokens", max_digits=12, decimal_places=6, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "code"]

    def __str__(self) -> str:
        return f"{self.label}: ${self.usd_per_million}/1M tokens"


class CreditAccount(models.Model):
    """A user's prepaid balance, debited per request (tokens × price) by the usage task."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="credit_account"
    )
    balance_nano = models.BigIntegerField(default=0)
    spent_nano = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user}: ${self.balance}"

    @property
    def balance(self) -> Decimal:
        return nano_to_usd(self.balance_nano)

    @property
    def spent(self) -> Decimal:
        return nano_to_usd(self.spent_nano)


class CreditGrant(models.Model):
    """An operator's grant (or correction, when negative) of credit to a user; the ledger of the balance."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credit_grants")
    amount_usd = models.DecimalField("amount (USD)", max_digits=12, decimal_places=2)
    note = models.CharField(max_length=200, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"${self.amount_usd} to {self.user}"
