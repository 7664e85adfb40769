"""Dashboard pages: scoping (own keys; staff see all), filters, pagination, inspector, exports, credits."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from sessions import services
from sessions.models import RelaySession
from tests.factories import make_key

from .conftest import denied_session_events, session_row, usage

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(key, other_key):
    now = datetime.now(UTC)
    sid = uuid.uuid1()
    events = denied_session_events(key, sid)
    for i in range(30):
        s = uuid.uuid1()
        at = now - timedelta(hours=i * 3)
        status = ["success", "failure", "open"][i % 3]
        events += [
            session_row(key, s, at, status=status, turns=i % 4),
            usage(
                key, at, session_id=str(s), latency_ms=100 + i * 40, status_code=500 if i % 7 == 0 else 200
            ),
        ]
    osid = uuid.uuid1()
    events += [
        session_row(other_key, osid, now, status="success"),
        usage(other_key, now, session_id=str(osid), models=["anthropic/claude-x"]),
    ]
    services.do_record_events(events)
    return {"sid": sid, "other_sid": osid}


def test_overview_empty_state_for_new_users(user_client):
    html = user_client.get(reverse("dashboard:overview")).content.decode()
    assert "No usage yet" in html and "SequrityClient" in html


def test_overview_with_data(user_client, data):
    for rng in ("24h", "7d", "30d"):
        r = user_client.get(reverse("dashboard:overview"), {"range": rng})
        assert r.status_code == 200
        chart = r.context["chart_data"]
        assert len(chart["labels"]) == {"24h": 24, "7d": 168, "30d": 30}[rng]
        html = r.content.decode()
        assert 'data-chart="requests"' in html and "vendor/chart.umd.min.js" in html
        assert "anthropic/claude-x" not in html  # another user's model
    totals = r.context["totals"]
    assert totals.requests == 31 and totals.errors == 5
    assert totals.p50 is not None and totals.p95 >= totals.p50


def test_overview_filters_by_key_and_model(user_client, data, key, user):
    key2, _ = make_key(user, "single-llm")
    services.do_record_events([usage(key2, models=["openai/gpt-5-nano"])])
    r = user_client.get(reverse("dashboard:overview"), {"range": "24h", "key": key2.pk})
    assert r.context["totals"].requests == 1
    r = user_client.get(reverse("dashboard:overview"), {"range": "30d", "model": "openai/gpt-5-nano"})
    assert r.context["totals"].requests == 1
    assert "openai/gpt-5-mini" in r.context["models"]


def test_overview_ignores_other_users_key_filter(user_client, data, other_key):
    r = user_client.get(reverse("dashboard:overview"), {"key": other_key.pk, "range": "24h"})
    assert r.status_code == 200 and r.context["key_id"] is None
    assert r.context["totals"].requests <= 31


def test_staff_sees_all(staff_client, data):
    r = staff_client.get(reverse("dashboard:overview"), {"range": "30d"})
    assert r.context["totals"].requests == 32
    r = staff_client.get(reverse("dashboard:session_detail", args=[data["other_sid"]]))
    assert r.status_code == 200
    r = staff_client.get(reverse("dashboard:sessions"))
    assert r.context["page"].paginator.count == 32


def test_sessions_list_filters_and_pagination(user_client, data, key):
    url = reverse("dashboard:sessions")
    r = user_client.get(url)
    assert r.status_code == 200
    page = r.context["page"]
    assert page.paginator.count == 31 and len(page.object_list) == 25
    assert str(data["other_sid"]) not in r.content.decode()
    assert user_client.get(url, {"page": 2}).context["page"].object_list.__len__() == 6
    assert {s.status for s in user_client.get(url, {"status": "denied"}).context["page"].object_list} == {
        "denied"
    }
    assert user_client.get(url, {"status": "denied"}).context["page"].paginator.count == 1
    tabs = {t["code"]: t["count"] for t in r.context["status_tabs"]}
    assert tabs[""] == 31 and tabs["denied"] == 1 and tabs["success"] == 10
    assert user_client.get(url, {"arch": "single-llm"}).context["page"].paginator.count == 0
    today = datetime.now(UTC).date()
    r = user_client.get(url, {"date_from": today.isoformat(), "date_to": today.isoformat()})
    assert 0 < r.context["page"].paginator.count <= 31
    r = user_client.get(url, {"date_from": "2020-01-02", "date_to": "2020-01-01"})
    assert r.status_code == 200 and "before the start" in r.content.decode()
    assert user_client.get(url, {"key": "nonsense", "page": "x"}).status_code == 200


def test_inspector_shows_denied_call_and_rule(user_client, data):
    r = user_client.get(reverse("dashboard:session_detail", args=[data["sid"]]))
    assert r.status_code == 200
    html = r.content.decode()
    assert 'data-tool="send_email" data-verdict="hard_denied"' in html
    assert "hard deny when to.value not in" in html.replace("&quot;", '"')
    assert "Only mail the owner" in html and "Denied (hard)" in html
    assert "search_inbox" in html and "Allowed (hard)" in html
    assert '<div class="ln">1\n2\n3\n4\n' in html  # program line numbers
    assert "__non_executable" in html  # metadata of the final value
    assert "812 ms" in html and "1,820" in html  # an LLM call's latency and tokens
    assert "pii_redaction" in html


def test_inspector_404_for_other_users_and_unknown(user_client, data):
    assert user_client.get(reverse("dashboard:session_detail", args=[data["other_sid"]])).status_code == 404
    assert user_client.get(reverse("dashboard:session_detail", args=[uuid.uuid4()])).status_code == 404
    assert user_client.get("/dashboard/sessions/not-a-uuid/").status_code == 404


def test_pages_need_login(client):
    for name in ("dashboard:overview", "dashboard:sessions", "dashboard:credits"):
        r = client.get(reverse(name))
        assert r.status_code == 302 and "/login" in r["Location"]


def test_key_usage_page(user_client, data, key, other_key):
    r = user_client.get(reverse("dashboard:key_usage", args=[key.pk]), {"range": "24h"})
    assert r.status_code == 200
    assert r.context["totals"].requests >= 1 and len(r.context["recent"]) == 10
    assert r.context["price"] > 0
    assert user_client.get(reverse("dashboard:key_usage", args=[other_key.pk])).status_code == 404


def _body(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_exports(user_client, data):
    r = user_client.get(reverse("dashboard:export", args=["sessions", "csv"]))
    assert r["Content-Type"].startswith("text/csv") and "attachment" in r["Content-Disposition"]
    lines = _body(r).strip().splitlines()
    assert lines[0].startswith("id,key_prefix") and len(lines) == 32
    r = user_client.get(reverse("dashboard:export", args=["sessions", "jsonl"]), {"status": "denied"})
    rows = [json.loads(line) for line in _body(r).splitlines()]
    assert len(rows) == 1 and rows[0]["id"] == str(data["sid"]) and len(rows[0]["events"]) == 10
    r = user_client.get(reverse("dashboard:export", args=["usage", "jsonl"]))
    rows = [json.loads(line) for line in _body(r).splitlines()]
    assert len(rows) == 31 and all("anthropic/claude-x" not in row["models"] for row in rows)
    r = user_client.get(reverse("dashboard:export", args=["usage", "csv"]), {"session": str(data["sid"])})
    assert len(_body(r).strip().splitlines()) == 2
    assert user_client.get(reverse("dashboard:export", args=["secrets", "csv"])).status_code == 404
    r = user_client.get(
        reverse("dashboard:export", args=["sessions", "jsonl"]), {"session": str(data["other_sid"])}
    )
    assert _body(r) == ""


def test_session_without_state_event_renders(user_client, key):
    sid = uuid.uuid1()
    services.do_record_events([usage(key, session_id=str(sid))])
    assert RelaySession.objects.get(pk=sid).status == "open"
    assert user_client.get(reverse("dashboard:session_detail", args=[sid])).status_code == 200
