"""/api/v1/sessions/ (the dashboard's filters, the inspector's steps) and /api/v1/usage/ (rollup totals);
another user's sessions, keys and usage are 404."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sessions import services
from sessions.models import UsageEvent
from tests.factories import make_key
from tests.sessions.conftest import denied_session_events, session_row, usage

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(user):
    return make_key(user, "dual-llm")[0]


@pytest.fixture
def other_key(other_user):
    return make_key(other_user, "single-llm")[0]


@pytest.fixture
def data(key, other_key):
    now = datetime.now(UTC)
    sid = uuid.uuid1()
    events = denied_session_events(key, sid)
    for i in range(12):
        s = uuid.uuid1()
        at = now - timedelta(hours=i * 3 + 1)
        events += [
            session_row(key, s, at, status=["success", "failure", "open"][i % 3]),
            usage(
                key, at, session_id=str(s), latency_ms=100 + i * 40, status_code=500 if i % 5 == 0 else 200
            ),
        ]
    osid = uuid.uuid1()
    events += [
        session_row(other_key, osid, now, status="success"),
        usage(other_key, now, session_id=str(osid), models=["anthropic/claude-x"]),
    ]
    services.do_record_events(events)
    return {"sid": sid, "other_sid": osid}


def test_sessions_list_with_the_dashboards_filters(api, data, key):
    page = api.get("/api/v1/sessions/").json()
    assert page["count"] == 13 and str(data["other_sid"]) not in {s["id"] for s in page["results"]}
    first = page["results"][0]
    assert set(first) >= {
        "id",
        "key",
        "owner",
        "arch",
        "status",
        "turns",
        "models",
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "created_at",
        "last_activity",
    }
    assert first["key"] == {"id": key.pk, "name": key.name, "prefix": key.prefix}
    denied = api.get("/api/v1/sessions/", {"status": "denied"}).json()
    assert denied["count"] == 1 and denied["results"][0]["id"] == str(data["sid"])
    assert api.get("/api/v1/sessions/", {"arch": "single-llm"}).json()["count"] == 0
    assert api.get("/api/v1/sessions/", {"key": key.pk, "page_size": 5}).json()["count"] == 13
    today = datetime.now(UTC).date().isoformat()
    assert 0 < api.get("/api/v1/sessions/", {"date_from": today, "date_to": today}).json()["count"] <= 13
    assert api.get("/api/v1/sessions/", {"date_to": "2020-01-01"}).json()["count"] == 0
    for params, field in [
        ({"status": "bogus"}, "status"),
        ({"arch": "x"}, "arch"),
        ({"date_from": "soon"}, "date_from"),
        ({"date_from": "2020-01-02", "date_to": "2020-01-01"}, "date_to"),
        ({"key": "k"}, "key"),
    ]:
        r = api.get("/api/v1/sessions/", params)
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == field, (params, r.content)


def test_session_detail_has_the_inspectors_steps(api, data):
    r = api.get(f"/api/v1/sessions/{data['sid']}/")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "denied" and body["turns"] == 1
    types = [s["type"] for s in body["steps"]]
    assert (
        types[:3] == ["user_message", "llm_call", "program"] and "tool_result" not in types
    )  # results sit in calls
    calls = [s for s in body["steps"] if s["type"] == "tool_call"]
    assert [(c["data"]["tool"], c["verdict"], c["denied"]) for c in calls] == [
        ("search_inbox", "hard_allowed", False),
        ("send_email", "hard_denied", True),
    ]
    assert calls[0]["result"]["content"] == '[{"subject": "Invoice 42"}]'
    assert calls[1]["data"]["record"]["denied"][0]["description"] == "Only mail the owner"
    assert body["summary"] == {
        "steps": 10,
        "truncated": False,
        "tool_calls": 2,
        "denied_calls": 1,
        "llm_calls": 2,
        "llm_tokens": 1820 + 240 + 640 + 96,
    }
    assert body["final"]["value"] == "2 invoices" and "__non_executable" in body["final"]["meta"]["tags"]
    assert body["final"]["error"]["headline"].startswith("Tool call to 'send_email' is denied")
    assert len(body["requests_log"]) == 1 and body["requests_log"][0]["prompt_tokens"] == 2460


def test_another_users_sessions_are_404(api, other_api, data, other_key):
    for sid in (data["other_sid"], uuid.uuid4(), "not-a-uuid"):
        r = api.get(f"/api/v1/sessions/{sid}/")
        assert r.status_code == 404 and r.json()["code"] == "not_found", sid
    r = api.get("/api/v1/sessions/", {"key": other_key.pk})
    assert r.status_code == 404 and r.json()["detail"] == "No such key."
    assert other_api.get(f"/api/v1/sessions/{data['other_sid']}/").status_code == 200
    assert other_api.get(f"/api/v1/sessions/{data['sid']}/").status_code == 404


def test_staff_see_every_session(staff_api, data):
    assert staff_api.get("/api/v1/sessions/").json()["count"] == 14
    assert staff_api.get(f"/api/v1/sessions/{data['other_sid']}/").status_code == 200


def test_usage_grouped_by_day_hour_key_and_model(api, data, key):
    events = UsageEvent.objects.filter(api_key=key)
    total_requests = events.count()
    errors = events.filter(status_code__gte=400).count()
    tokens = sum(e.prompt_tokens + e.completion_tokens for e in events)

    day = api.get("/api/v1/usage/").json()
    assert day["group_by"] == "day" and day["granularity"] == "day"
    assert len(day["results"]) in (7, 8)  # every day of the range, zeros included
    assert day["totals"]["requests"] == total_requests and day["totals"]["errors"] == errors
    assert day["totals"]["total_tokens"] == tokens
    assert float(day["totals"]["cost_usd"]) > 0
    assert day["totals"]["latency_median_ms"] is not None
    assert day["totals"]["latency_p95_ms"] >= day["totals"]["latency_median_ms"]
    assert sum(r["requests"] for r in day["results"]) == total_requests

    now = datetime.now(UTC)
    hour = api.get(
        "/api/v1/usage/",
        {"group_by": "hour", "start": (now - timedelta(hours=48)).isoformat(), "end": now.isoformat()},
    ).json()
    assert hour["granularity"] == "hour" and len(hour["results"]) in (48, 49)
    assert hour["totals"]["requests"] == total_requests
    assert all(r["bucket"] and r["key"] is None and r["model"] is None for r in hour["results"])

    by_key = api.get("/api/v1/usage/", {"group_by": "key"}).json()
    assert [(r["key"]["id"], r["requests"]) for r in by_key["results"]] == [(key.pk, total_requests)]
    by_model = api.get("/api/v1/usage/", {"group_by": "model"}).json()
    assert {r["model"] for r in by_model["results"]} == {"openai/gpt-5-mini"}
    assert by_model["totals"]["requests"] == total_requests
    only = api.get("/api/v1/usage/", {"group_by": "key", "key": key.pk, "model": "nothing"}).json()
    assert (
        only["results"] == [] and only["totals"]["requests"] == 0 and only["totals"]["latency_p95_ms"] is None
    )


def test_usage_validation_and_another_users_key(api, data, other_key):
    r = api.get("/api/v1/usage/", {"key": other_key.pk})
    assert r.status_code == 404 and r.json()["detail"] == "No such key."
    now = datetime.now(UTC)
    bad = [
        ({"group_by": "week"}, "group_by"),
        ({"start": "yesterday"}, "start"),
        ({"key": "x"}, "key"),
        ({"start": now.isoformat(), "end": (now - timedelta(days=1)).isoformat()}, "start"),
        ({"group_by": "hour", "start": (now - timedelta(days=40)).isoformat()}, "start"),
        ({"start": "0001-01-01T00:00:00Z"}, "start"),
        ({"end": "9999-12-31T23:59:59Z"}, "end"),
    ]
    for params, field in bad:
        r = api.get("/api/v1/usage/", params)
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == field, (params, r.content)


def test_staff_usage_covers_every_key(staff_api, data, other_key):
    by_key = staff_api.get("/api/v1/usage/", {"group_by": "key"}).json()
    assert other_key.pk in {r["key"]["id"] for r in by_key["results"]}
    assert staff_api.get("/api/v1/usage/", {"key": other_key.pk}).json()["totals"]["requests"] == 1
