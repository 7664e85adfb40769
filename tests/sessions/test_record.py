"""do_record_events: idempotent by event id, sessions converge to the latest state, rollups and totals."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from apikeys.models import ApiKey
from sessions import services
from sessions.histogram import LATENCY_FIELDS, bucket_of, quantile
from sessions.models import Granularity, RelaySession, SessionEvent, UsageEvent, UsageRollup

from .conftest import denied_session_events, session_row, step, usage

pytestmark = pytest.mark.django_db


def test_usage_stored_once_and_key_touched(key):
    ev = usage(key)
    assert services.do_record_events([ev]) == 1
    assert services.do_record_events([ev]) == 0  # a retried task
    assert services.do_record_events([ev, ev]) == 0
    assert UsageEvent.objects.count() == 1
    row = UsageEvent.objects.get()
    assert (row.prompt_tokens, row.completion_tokens, row.model, row.status_code) == (
        1000,
        500,
        "openai/gpt-5-mini",
        200,
    )
    key.refresh_from_db()
    assert key.last_used_at == row.created_at
    rollups = UsageRollup.objects.all()
    assert {r.granularity for r in rollups} == {"h", "d"}
    assert all(r.requests == 1 and r.prompt_tokens == 1000 for r in rollups)


def test_do_record_usage_event_keeps_its_contract(key):
    ev = usage(key)
    del ev["kind"]
    assert services.do_record_usage_event(ev) is True
    assert services.do_record_usage_event(ev) is False
    assert ApiKey.objects.get(pk=key.pk).last_used_at is not None


def test_session_upsert_latest_state_wins_in_any_order(key):
    sid = uuid.uuid1()
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    first = session_row(key, sid, t0, status="open", turns=0)
    later = session_row(key, sid, t0 + timedelta(seconds=5), status="success", turns=1)
    services.do_record_events([later])
    services.do_record_events([first])  # arrives late: must not win
    s = RelaySession.objects.get(pk=sid)
    assert (s.status, s.turns, s.created_at) == ("success", 1, t0)
    assert s.last_activity == t0 + timedelta(seconds=5)
    # both in one batch, reversed
    sid2 = uuid.uuid1()
    services.do_record_events(
        [
            session_row(key, sid2, t0 + timedelta(seconds=9), status="denied", turns=2),
            session_row(key, sid2, t0, status="open"),
        ]
    )
    assert RelaySession.objects.get(pk=sid2).status == "denied"


def test_steps_before_the_session_row_make_a_placeholder(key):
    sid = uuid.uuid1()
    services.do_record_events([step(key, sid, 1, "user_message", {"text": "hi"})])
    s = RelaySession.objects.get(pk=sid)
    assert s.status == "open" and s.api_key_id == key.pk and s.state_at is None
    services.do_record_events([session_row(key, sid, status="success", turns=1)])
    s.refresh_from_db()
    assert s.status == "success" and s.arch == "dual-llm" and s.state_at is not None


def test_full_session_and_totals(key):
    sid = uuid.uuid1()
    events = denied_session_events(key, sid)
    assert services.do_record_events(events) == 1 + 10
    assert services.do_record_events(events) == 0
    s = RelaySession.objects.get(pk=sid)
    assert (s.status, s.turns, s.requests, s.prompt_tokens, s.completion_tokens) == (
        "denied",
        1,
        1,
        2460,
        336,
    )
    assert s.model_names == ["openai/gpt-5-mini"]
    assert list(SessionEvent.objects.filter(session=s).values_list("seq", flat=True)) == list(range(1, 11))
    assert s.cost_nano > 0


def test_malformed_and_unknown_key_events_are_dropped(key):
    good = usage(key)
    bad = {"kind": "usage", "event_id": "not-a-uuid", "key_id": key.pk}
    ghost = usage(key, key_id=999_999)
    odd = {"kind": "mystery", "event_id": str(uuid.uuid4())}
    assert services.do_record_events([bad, ghost, odd, good, "junk"]) == 1
    assert UsageEvent.objects.count() == 1


def test_overlong_values_are_truncated_not_fatal(key):
    ev = usage(
        key,
        provider="p" * 500,
        error_kind="e" * 500,
        models=["m" * 999],
        prompt_tokens=10**12,
        status_code=99999,
    )
    assert services.do_record_events([ev]) == 1
    row = UsageEvent.objects.get()
    assert len(row.provider) == 32 and row.prompt_tokens == 2**31 - 1


def test_nul_characters_do_not_poison_a_batch(key):
    sid = uuid.uuid1()
    services.do_record_events(
        [
            step(key, sid, 1, "tool_result", {"content": "a\x00b", "k\x00": ["\x00"]}),
            usage(key, session_id=str(sid), provider="x\x00y", models=["m\x00"]),
        ]
    )
    assert SessionEvent.objects.get().data == {"content": "ab", "k": [""]}
    assert UsageEvent.objects.get().provider == "xy"


def test_beat_schedule_names_the_prune_task(settings, key):
    from sessions import tasks

    assert settings.CELERY_BEAT_SCHEDULE["prune-session-log"]["task"] == tasks.prune_log.name
    assert tasks.prune_log.apply().get() == {
        "usage_events": 0,
        "sessions": 0,
        "hourly_rollups": 0,
        "daily_rollups": 0,
    }


def test_rollup_sums_and_histogram(key):
    at = datetime.now(UTC).replace(minute=30)
    latencies = [3, 12, 40, 90, 420, 1200, 5000, 70_000]
    services.do_record_events(
        [usage(key, at, latency_ms=lat, status_code=500 if lat > 4000 else 200) for lat in latencies]
    )
    hour = UsageRollup.objects.get(granularity=Granularity.HOUR)
    assert hour.requests == 8 and hour.errors == 2
    assert hour.bucket == at.replace(minute=0, second=0, microsecond=0)
    counts = [getattr(hour, f) for f in LATENCY_FIELDS]
    assert sum(counts) == 8 and counts[bucket_of(420)] == 1 and counts[-1] == 1
    assert 90 <= quantile(counts, 0.5) <= 420
    day = UsageRollup.objects.get(granularity=Granularity.DAY)
    assert day.requests == 8 and day.bucket.hour == 0


def test_quantile_estimates():
    counts = [0] * len(LATENCY_FIELDS)
    counts[bucket_of(120)] = 100
    assert 100 <= quantile(counts, 0.5) <= 150
    assert quantile([0] * len(LATENCY_FIELDS), 0.5) is None


def test_prune(key, settings):
    settings.LOG_RETENTION_DAYS = 30
    settings.ROLLUP_RETENTION_DAYS = 90
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    sid_old, sid_new = uuid.uuid1(), uuid.uuid1()
    services.do_record_events(
        [
            usage(key, old, session_id=str(sid_old)),
            step(key, sid_old, 1, "user_message", {"text": "x"}, at=old),
            usage(key, recent, session_id=str(sid_new)),
            usage(key, now - timedelta(days=100)),
        ]
    )
    counts = services.do_prune_log(now)
    assert counts["usage_events"] == 2 and counts["sessions"] == 1
    assert list(RelaySession.objects.values_list("id", flat=True)) == [sid_new]
    assert not SessionEvent.objects.exists()
    assert not UsageRollup.objects.filter(granularity="h", bucket__lt=now - timedelta(days=30)).exists()
    assert UsageRollup.objects.filter(granularity="d", bucket__lt=now - timedelta(days=30)).exists()
    assert not UsageRollup.objects.filter(granularity="d", bucket__lt=now - timedelta(days=91)).exists()


def test_emit_inside_a_transaction_waits_for_the_commit(db):
    from django.db import transaction

    from sessions import emit as log

    log._take()
    try:
        with transaction.atomic():
            log.emit("usage", key_id=0)
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert log._take() == []
