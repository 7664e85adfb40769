"""Writes of the session/usage log, credits and retention. Celery tasks and the admin call these.

``do_record_events(events)`` stores a batch of relay events (see ``sessions.emit``) in one transaction:

* ``usage``: ``INSERT ... ON CONFLICT (event_id) DO NOTHING RETURNING event_id`` tells which events are new;
  only those update the rollups, the session's totals, the user's credit balance (an ``F()`` debit) and the
  key's ``last_used_at``. A batch delivered twice, or two workers racing on the same event, therefore count
  it once: on PostgreSQL the second insert waits for the first transaction and then conflicts.
* ``session``: upsert of the session row; the state of the event with the latest ``created_at`` wins, so
  events applied out of order (retries, spooled batches, parallel workers) converge.
* ``session_event``: steps of a session, stored once by ``event_id``.

Rows are locked in one global order (usage ids, sessions, steps, rollups, accounts, keys; each sorted) so
concurrent batches cannot deadlock. Malformed events and events of deleted keys are dropped with a warning
instead of failing the batch forever (the task retries on database errors only).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apikeys.models import ApiKey

from . import credits
from .histogram import LATENCY_FIELDS, bucket_of
from .models import (
    NANO_PER_USD,
    CreditAccount,
    CreditGrant,
    Granularity,
    RelaySession,
    SessionEvent,
    SessionStatus,
    UsageEvent,
    UsageRollup,
)

logger = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1
SMALLINT_MAX = 32767
STATUSES = set(SessionStatus.values)
CHUNK = 100  # rows per INSERT statement (well under both databases' parameter limits)


# --- parsing --------------------------------------------------------------------------------------------------


def _dt(value) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif value:
        dt = datetime.fromisoformat(str(value))
    else:
        return timezone.now()
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _int(value, hi: int = INT32_MAX) -> int:
    return max(0, min(hi, int(value or 0)))


def _str(value, n: int) -> str:
    return str(value or "").replace("\x00", "")[:n]


def _clean(value):
    """JSON data without NUL characters (PostgreSQL's text and jsonb refuse them; a retry would not help)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _models(value) -> list[str]:
    if not isinstance(value, list | tuple):
        return []
    return [_str(m, 200) for m in value if m][:8]


@dataclass
class _Usage:
    event_id: uuid.UUID
    key_id: int
    session_id: uuid.UUID | None
    endpoint_type: str
    api: str
    provider: str
    arch: str
    models: list[str]
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    status_code: int
    error_kind: str
    streamed: bool
    created_at: datetime
    cost_nano: int = 0

    @classmethod
    def parse(cls, ev: dict) -> _Usage:
        sid = ev.get("session_id")
        return cls(
            event_id=uuid.UUID(str(ev["event_id"])),
            key_id=int(ev["key_id"]),
            session_id=uuid.UUID(str(sid)) if sid else None,
            endpoint_type=_str(ev.get("endpoint_type"), 16),
            api=_str(ev.get("api"), 32),
            provider=_str(ev.get("provider"), 32),
            arch=_str(ev.get("arch"), 16),
            models=_models(ev.get("models")),
            prompt_tokens=_int(ev.get("prompt_tokens")),
            completion_tokens=_int(ev.get("completion_tokens")),
            latency_ms=max(0.0, float(ev.get("latency_ms") or 0)),
            status_code=_int(ev.get("status_code"), SMALLINT_MAX),
            error_kind=_str(ev.get("error_kind"), 64),
            streamed=bool(ev.get("streamed")),
            created_at=_dt(ev.get("created_at")),
        )

    @property
    def model(self) -> str:
        return self.models[0] if self.models else ""


@dataclass
class _State:
    session_id: uuid.UUID
    key_id: int
    arch: str
    endpoint_type: str
    api: str
    provider: str
    status: str
    turns: int
    closed: bool
    models: list[str]
    created_at: datetime
    reason: str = ""

    @classmethod
    def parse(cls, ev: dict) -> _State:
        status = str(ev.get("status") or "open")
        return cls(
            session_id=uuid.UUID(str(ev["session_id"])),
            key_id=int(ev["key_id"]),
            arch=_str(ev.get("arch"), 16),
            endpoint_type=_str(ev.get("endpoint_type"), 16),
            api=_str(ev.get("api"), 32),
            provider=_str(ev.get("provider"), 32),
            status=status if status in STATUSES else "open",
            turns=_int(ev.get("turns")),
            closed=bool(ev.get("closed")),
            models=_models(ev.get("models")),
            created_at=_dt(ev.get("created_at")),
            reason=_str(ev.get("reason"), 500),
        )


@dataclass
class _Step:
    event_id: uuid.UUID
    session_id: uuid.UUID
    key_id: int
    turn: int
    seq: int
    type: str
    data: dict
    created_at: datetime

    @classmethod
    def parse(cls, ev: dict) -> _Step:
        data = ev.get("data")
        return cls(
            event_id=uuid.UUID(str(ev["event_id"])),
            session_id=uuid.UUID(str(ev["session_id"])),
            key_id=int(ev["key_id"]),
            turn=_int(ev.get("turn")),
            seq=_int(ev.get("seq")),
            type=_str(ev.get("type"), 32),
            data=_clean(data if isinstance(data, dict) else {"value": data}),
            created_at=_dt(ev.get("created_at")),
        )


_PARSERS = {"usage": _Usage.parse, "session": _State.parse, "session_event": _Step.parse}


@dataclass
class _Batch:
    usage: list[_Usage] = field(default_factory=list)
    states: list[_State] = field(default_factory=list)
    steps: list[_Step] = field(default_factory=list)

    def all(self):
        return [*self.usage, *self.states, *self.steps]


def _parse(events: list[dict]) -> _Batch:
    batch = _Batch()
    lists = {"usage": batch.usage, "session": batch.states, "session_event": batch.steps}
    for ev in events:
        kind = ev.get("kind") if isinstance(ev, dict) else None
        parser = _PARSERS.get(kind)
        if parser is None:
            logger.warning("dropping log event of unknown kind %r", kind)
            continue
        try:
            lists[kind].append(parser(ev))
        except (KeyError, TypeError, ValueError, AttributeError):
            logger.warning("dropping malformed %s event %s", kind, ev.get("event_id"), exc_info=True)
    return batch


# --- SQL helpers ---------------------------------------------------------------------------------------------


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _insert(
    model,
    rows: list[dict],
    *,
    conflict: list[str],
    update: dict[str, str] | None = None,
    returning: str | None = None,
) -> list:
    """Multi-row ``INSERT ... ON CONFLICT (conflict) DO NOTHING | DO UPDATE SET ...`` (PostgreSQL and SQLite
    ≥ 3.35 share this syntax); returns the ``returning`` column of the rows actually inserted/updated."""
    if not rows:
        return []
    meta = model._meta
    names = list(rows[0])
    fields = [meta.get_field(n) for n in names]
    table = _q(meta.db_table)
    head = f"INSERT INTO {table} ({', '.join(_q(f.column) for f in fields)}) VALUES "
    tail = f" ON CONFLICT ({', '.join(_q(meta.get_field(c).column) for c in conflict)}) "
    tail += (
        ("DO UPDATE SET " + ", ".join(f"{_q(col)} = {expr}" for col, expr in update.items()))
        if update
        else "DO NOTHING"
    )
    if returning:
        tail += f" RETURNING {_q(meta.get_field(returning).column)}"
    placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    out: list = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            params = [
                f.get_db_prep_save(row[n], connection)
                for row in chunk
                for f, n in zip(fields, names, strict=True)
            ]
            cursor.execute(head + ", ".join([placeholder] * len(chunk)) + tail, params)
            if returning:
                out.extend(r[0] for r in cursor.fetchall())
    return out


def _cols(model):
    table = _q(model._meta.db_table)

    def t(name: str) -> str:
        return f"{table}.{_q(model._meta.get_field(name).column)}"

    def x(name: str) -> str:
        return f"excluded.{_q(model._meta.get_field(name).column)}"

    return t, x


# --- the batch --------------------------------------------------------------------------------------------------


def do_record_events(events: list[dict]) -> int:
    """Store a batch of relay events (``usage``, ``session``, ``session_event``); idempotent by event id.

    Returns how many usage events and session steps were new.
    """
    batch = _parse(events)
    key_ids = {e.key_id for e in batch.all()}
    if not key_ids:
        return 0
    keys = {
        k["id"]: k for k in ApiKey.objects.filter(pk__in=key_ids).values("id", "user_id", "arch", "features")
    }
    if len(keys) < len(key_ids):
        logger.warning("dropping log events of unknown keys %s", sorted(key_ids - set(keys)))
        batch.usage = [e for e in batch.usage if e.key_id in keys]
        batch.states = [e for e in batch.states if e.key_id in keys]
        batch.steps = [e for e in batch.steps if e.key_id in keys]
    if not (batch.usage or batch.states or batch.steps):
        return 0
    table = credits.price_table() if batch.usage else None
    with transaction.atomic():
        new_usage = _insert_usage(batch.usage, keys, table)
        _upsert_sessions(batch.states, new_usage, batch.steps)
        new_steps = _insert_steps(batch.steps)
        _upsert_rollups(new_usage)
        _debit(new_usage, keys)
        _touch_keys(new_usage)
    return len(new_usage) + new_steps


def do_record_usage_event(event: dict) -> bool:
    """Store one usage event unless its ``event_id`` is already stored; returns whether it was new."""
    return do_record_events([{**event, "kind": "usage"}]) == 1


def _price_of(e: _Usage, key: dict, table: credits.PriceTable) -> Decimal:
    return table.per_million(e.arch or key["arch"], credits.enabled_defences(key["features"]))


def _insert_usage(usage: list[_Usage], keys: dict, table) -> list[_Usage]:
    if not usage:
        return []
    unique = {e.event_id: e for e in usage}  # a batch may repeat an event
    ordered = [unique[i] for i in sorted(unique)]
    for e in ordered:
        e.cost_nano = credits.cost_nano(
            e.prompt_tokens + e.completion_tokens, _price_of(e, keys[e.key_id], table)
        )
    rows = [
        {
            "event_id": e.event_id,
            "api_key": e.key_id,
            "session_id": e.session_id,
            "endpoint_type": e.endpoint_type,
            "api": e.api,
            "provider": e.provider,
            "arch": e.arch,
            "models_used": ",".join(e.models)[:300],
            "model": e.model,
            "prompt_tokens": e.prompt_tokens,
            "completion_tokens": e.completion_tokens,
            "latency_ms": e.latency_ms,
            "status_code": e.status_code,
            "error_kind": e.error_kind,
            "streamed": e.streamed,
            "cost_nano": e.cost_nano,
            "created_at": e.created_at,
        }
        for e in ordered
    ]
    inserted = {
        uuid.UUID(str(v)) for v in _insert(UsageEvent, rows, conflict=["event_id"], returning="event_id")
    }
    return [e for e in ordered if e.event_id in inserted]


def _upsert_sessions(states: list[_State], new_usage: list[_Usage], steps: list[_Step]) -> None:
    rows: dict[uuid.UUID, dict] = {}

    def row(sid: uuid.UUID, key_id: int, at: datetime) -> dict:
        r = rows.get(sid)
        if r is None:
            r = rows[sid] = {
                "id": sid,
                "api_key": key_id,
                "arch": "",
                "endpoint_type": "",
                "api": "",
                "provider": "",
                "status": "open",
                "status_reason": "",
                "turns": 0,
                "closed": False,
                "model_names": [],
                "state_at": None,
                "requests": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost_nano": 0,
                "created_at": at,
                "last_activity": at,
            }
        r["created_at"] = min(r["created_at"], at)
        r["last_activity"] = max(r["last_activity"], at)
        return r

    for e in new_usage:
        if e.session_id is None:
            continue
        r = row(e.session_id, e.key_id, e.created_at)
        r["requests"] += 1
        r["prompt_tokens"] += e.prompt_tokens
        r["completion_tokens"] += e.completion_tokens
        r["cost_nano"] += e.cost_nano
        if r["state_at"] is None:  # what a placeholder row shows until the session's own event arrives
            r.update(
                arch=r["arch"] or e.arch,
                endpoint_type=r["endpoint_type"] or e.endpoint_type,
                api=r["api"] or e.api,
                provider=r["provider"] or e.provider,
                model_names=r["model_names"] or e.models,
            )
    for s in steps:
        row(s.session_id, s.key_id, s.created_at)
    for s in states:  # the latest state in the batch wins; equal times: the later event
        r = row(s.session_id, s.key_id, s.created_at)
        if r["state_at"] is None or s.created_at >= r["state_at"]:
            r.update(
                arch=s.arch,
                endpoint_type=s.endpoint_type,
                api=s.api,
                provider=s.provider,
                status=s.status,
                status_reason=s.reason,
                turns=s.turns,
                closed=s.closed,
                model_names=s.models,
                state_at=s.created_at,
            )
    if not rows:
        return
    t, x = _cols(RelaySession)
    newer = f"{x('state_at')} IS NOT NULL AND ({t('state_at')} IS NULL OR {x('state_at')} >= {t('state_at')})"
    update = {}
    for name in ("arch", "endpoint_type", "api", "provider"):
        update[name] = f"CASE WHEN {newer} OR {t(name)} = '' THEN {x(name)} ELSE {t(name)} END"
    for name in ("status", "status_reason", "turns", "closed", "model_names", "state_at"):
        update[RelaySession._meta.get_field(name).column] = (
            f"CASE WHEN {newer} THEN {x(name)} ELSE {t(name)} END"
        )
    for name in ("requests", "prompt_tokens", "completion_tokens", "cost_nano"):
        update[name] = f"{t(name)} + {x(name)}"
    update["created_at"] = (
        f"CASE WHEN {x('created_at')} < {t('created_at')} THEN {x('created_at')} ELSE {t('created_at')} END"
    )
    update["last_activity"] = (
        f"CASE WHEN {x('last_activity')} > {t('last_activity')} THEN {x('last_activity')} "
        f"ELSE {t('last_activity')} END"
    )
    _insert(RelaySession, [rows[k] for k in sorted(rows)], conflict=["id"], update=update)


def _insert_steps(steps: list[_Step]) -> int:
    if not steps:
        return 0
    unique = {s.event_id: s for s in steps}
    rows = [
        {
            "event_id": s.event_id,
            "session": s.session_id,
            "turn": s.turn,
            "seq": s.seq,
            "type": s.type,
            "data": s.data,
            "created_at": s.created_at,
        }
        for s in (unique[i] for i in sorted(unique))
    ]
    return len(_insert(SessionEvent, rows, conflict=["event_id"], returning="event_id"))


def floor_hour(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def floor_day(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


_ROLLUP_SUMS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "latency_sum_ms",
    "cost_nano",
    *LATENCY_FIELDS,
)


def rollup_rows(usage) -> list[dict]:
    """Hourly and daily rollup increments of usage events (objects with the ``_Usage`` attributes)."""
    groups: dict[tuple, dict] = {}
    for e in usage:
        hist = bucket_of(e.latency_ms)
        for gran, bucket in (
            (Granularity.HOUR, floor_hour(e.created_at)),
            (Granularity.DAY, floor_day(e.created_at)),
        ):
            k = (e.key_id, str(gran), bucket, e.model)
            g = groups.get(k)
            if g is None:
                g = groups[k] = {
                    "api_key": e.key_id,
                    "granularity": str(gran),
                    "bucket": bucket,
                    "model": e.model,
                    **{name: 0 for name in _ROLLUP_SUMS},
                }
            g["requests"] += 1
            g["errors"] += e.status_code >= 400
            g["prompt_tokens"] += e.prompt_tokens
            g["completion_tokens"] += e.completion_tokens
            g["latency_sum_ms"] += e.latency_ms
            g["cost_nano"] += e.cost_nano
            g[LATENCY_FIELDS[hist]] += 1
    return [groups[k] for k in sorted(groups)]


def _upsert_rollups(new_usage: list[_Usage]) -> None:
    if not new_usage:
        return
    t, x = _cols(UsageRollup)
    update = {name: f"{t(name)} + {x(name)}" for name in _ROLLUP_SUMS}
    _insert(
        UsageRollup,
        rollup_rows(new_usage),
        conflict=["api_key", "granularity", "bucket", "model"],
        update=update,
    )


def _debit(new_usage: list[_Usage], keys: dict) -> None:
    per_user: dict[int, int] = defaultdict(int)
    for e in new_usage:
        per_user[keys[e.key_id]["user_id"]] += e.cost_nano
    for user_id in sorted(per_user):
        cost = per_user[user_id]
        if cost:
            _add_to_balance(user_id, -cost, spent=cost)


def _add_to_balance(user_id: int, delta_nano: int, *, spent: int = 0) -> None:
    """``balance += delta`` as one ``F()`` update; creates the account on first use (race-safe)."""
    now = timezone.now()
    changes = {
        "balance_nano": F("balance_nano") + delta_nano,
        "spent_nano": F("spent_nano") + spent,
        "updated_at": now,
    }
    if CreditAccount.objects.filter(pk=user_id).update(**changes):
        return
    try:
        with transaction.atomic():
            CreditAccount.objects.create(user_id=user_id, balance_nano=delta_nano, spent_nano=spent)
    except IntegrityError:  # created meanwhile by a concurrent transaction: it is committed now
        CreditAccount.objects.filter(pk=user_id).update(**changes)


def _touch_keys(new_usage: list[_Usage]) -> None:
    last: dict[int, datetime] = {}
    for e in new_usage:
        last[e.key_id] = max(last.get(e.key_id, e.created_at), e.created_at)
    for key_id in sorted(last):
        ts = last[key_id]
        ApiKey.objects.filter(pk=key_id).filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=ts)).update(
            last_used_at=ts
        )


# --- credits -----------------------------------------------------------------------------------------------------


def do_grant_credit(*, user, amount_usd: Decimal, note: str = "", granted_by=None) -> CreditGrant:
    """Record a grant (negative: a correction) and add it to the user's balance in one transaction."""
    amount_usd = Decimal(amount_usd).quantize(Decimal("0.01"))
    with transaction.atomic():
        grant = CreditGrant.objects.create(
            user=user, amount_usd=amount_usd, note=note[:200], granted_by=granted_by
        )
        _add_to_balance(user.pk, int(amount_usd * NANO_PER_USD))
    credits.forget_cached_credit(user.pk)
    return grant


# --- retention -----------------------------------------------------------------------------------------------------


def _delete_in_chunks(qs, chunk: int = 5000) -> int:
    total = 0
    model = qs.model
    while True:
        ids = list(qs.values_list("pk", flat=True)[:chunk])
        if not ids:
            return total
        with transaction.atomic():
            total += model.objects.filter(pk__in=ids).delete()[1].get(model._meta.label, 0)


def do_prune_log(now: datetime | None = None) -> dict[str, int]:
    """Delete raw events older than ``LOG_RETENTION_DAYS`` (usage events; sessions with their steps, by last
    activity), hourly rollups older than that (at least 8 days: the 7-day charts use them) and daily rollups
    older than ``ROLLUP_RETENTION_DAYS``."""
    now = now or timezone.now()
    raw_cutoff = now - timedelta(days=settings.LOG_RETENTION_DAYS)
    hourly_cutoff = now - timedelta(days=max(settings.LOG_RETENTION_DAYS, 8))
    daily_cutoff = now - timedelta(days=settings.ROLLUP_RETENTION_DAYS)
    return {
        "usage_events": _delete_in_chunks(UsageEvent.objects.filter(created_at__lt=raw_cutoff)),
        "sessions": _delete_in_chunks(RelaySession.objects.filter(last_activity__lt=raw_cutoff)),
        "hourly_rollups": _delete_in_chunks(
            UsageRollup.objects.filter(granularity=Granularity.HOUR, bucket__lt=floor_hour(hourly_cutoff))
        ),
        "daily_rollups": _delete_in_chunks(
            UsageRollup.objects.filter(granularity=Granularity.DAY, bucket__lt=floor_day(daily_cutoff))
        ),
    }
