"""The sessions list names each session by its first message (or program line), searches that text on the server
without showing what a key does not log, and serves the fragment its "Live" toggle polls; the key list names a
custom policy; a new account's zero balance is not an error; the overview's cards fill whole rows."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from apikeys.models import ApiKey
from relay.session_log import redact
from sessions import services
from tests.factories import PASSWORD, UserFactory, make_key
from tests.sessions.conftest import session_row, step, usage

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def record(*events):
    services.do_record_events(list(events))


def conversation(key, *, messages=(), program=None, at=T0, content_logging="metadata"):
    """A session of ``key`` with user messages (turn by turn) and, maybe, a program; returns its id."""
    sid = uuid.uuid1()
    events = [session_row(key, sid, at, status="success", turns=max(1, len(messages)))]
    for turn, text in enumerate(messages, start=1):
        message = {"type": "user_message", "data": {"text": text}}
        events.append(
            step(
                key,
                sid,
                turn * 10,
                "user_message",
                redact(message, content_logging)["data"],
                turn=turn,
                at=at + timedelta(seconds=turn),
            )
        )
    if program is not None:
        data = redact({"type": "program", "data": {"attempt": 1, "program": program}}, content_logging)[
            "data"
        ]
        events.append(step(key, sid, 5, "program", data, at=at))
    events.append(usage(key, at, session_id=str(sid)))
    record(*events)
    return sid


def rows(client, **params):
    html = client.get(reverse("dashboard:sessions"), params).content.decode()
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r'<tr data-session-id="([0-9a-f-]+)">(.*?)</tr>', html, re.S)
    }


@pytest.fixture
def client_of(client):
    def login(user):
        assert client.login(username=user.username, password=PASSWORD)
        return client

    return login


def test_a_session_is_named_by_its_first_user_message(client_of, user):
    key, _ = make_key(user, "single-llm")
    sid = conversation(key, messages=["Book a table for two\n\n  at  Luigi's", "Make it three"])
    got = rows(client_of(user))[str(sid)]
    assert "Book a table for two at Luigi&#x27;s" in got and "Make it three" not in got
    assert str(sid)[:8] in got  # the id stays, under the message


def test_a_dual_session_without_a_message_shows_its_programs_first_line(client_of, user):
    key, _ = make_key(user, "dual-llm")
    sid = conversation(key, program='\n\nemails = search_inbox(query="invoices")\nsend_email(to="a@b.c")')
    got = rows(client_of(user))[str(sid)]
    assert "emails = search_inbox(query=&quot;invoices&quot;)" in got and "send_email" not in got
    assert "first line of the program" in got


def test_nothing_is_shown_or_searched_when_content_is_not_logged(client_of, user):
    quiet, _ = make_key(user, "single-llm", content_logging="none")
    never_logged = conversation(quiet, messages=["my password is hunter2"], content_logging="none")
    key, _ = make_key(user, "single-llm")
    logged_then_hidden = conversation(key, messages=["my password is hunter2"])
    ApiKey.objects.filter(pk=key.pk).update(content_logging="none")  # the user turned logging off since

    client = client_of(user)
    listed = rows(client)
    for sid in (never_logged, logged_then_hidden):
        assert "hunter2" not in listed[str(sid)] and "content not logged" in listed[str(sid)]
    assert rows(client, q="hunter2") == {}


def test_search_finds_words_of_any_message_or_program_in_any_case(client_of, user, other_user):
    key, _ = make_key(user, "dual-llm")
    lisbon = conversation(key, messages=["Flights to Lisbon in May", "cheapest please"])
    program = conversation(key, program='rates = fetch_rates(currency="CHF")')
    conversation(key, messages=["Weather in Oslo"])
    theirs = conversation(make_key(other_user, "dual-llm")[0], messages=["Flights to Lisbon too"])

    client = client_of(user)
    assert set(rows(client, q="lisbon")) == {str(lisbon)}
    assert set(rows(client, q="CHEAPEST")) == {str(lisbon)}  # a later message matches too
    assert set(rows(client, q="fetch_rates")) == {str(program)}
    assert set(rows(client, q=str(lisbon)[:8])) == {str(lisbon)}  # the short id shown in the list
    assert set(rows(client, q=str(lisbon))) == {str(lisbon)}
    assert str(theirs) not in rows(client, q="lisbon")
    html = client.get(reverse("dashboard:sessions"), {"q": "zanzibar"}).content.decode()
    assert "No sessions mention “zanzibar”" in html
    assert 'value="zanzibar"' in html  # the box keeps the query
    export = client.get(reverse("dashboard:export", args=["sessions", "csv"]), {"q": "lisbon"})
    assert len(b"".join(export.streaming_content).decode().strip().splitlines()) == 2  # header + one session


def test_the_live_fragment_has_the_changing_parts_and_is_never_cached(client_of, user):
    key, _ = make_key(user, "single-llm")
    first = conversation(key, messages=["first"])
    client = client_of(user)
    page = client.get(reverse("dashboard:sessions"), {"q": "fir"}).content.decode()
    live_url = re.search(r'data-live-url="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert live_url == reverse("dashboard:sessions_live") + "?q=fir"

    second = conversation(key, messages=["firmware update"], at=T0 + timedelta(minutes=5))
    response = client.get(live_url)
    html = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert 'id="status-tabs"' in html and 'id="session-rows"' in html and 'id="session-pagination"' in html
    assert html.index(str(second)) < html.index(str(first))  # newest first
    assert "<html" not in html
    client.logout()
    assert client.get(live_url).status_code == 302


def test_key_list_names_a_custom_policy_as_a_defence(client_of, user):
    policy = {"codes": {"code": 'tool "delete_file" {\n    must deny always;\n}', "language": "sqrt"}}
    custom, _ = make_key(user, "single-llm", policy=policy)
    plain, _ = make_key(user, "single-llm")
    html = client_of(user).get(reverse("apikeys:list")).content.decode()
    row = lambda k: re.search(rf'<tr data-key-id="{k.pk}".*?</tr>', html, re.S).group(0)  # noqa: E731
    defences = lambda k: re.search(r'<td class="defences">(.*?)</td>', row(k), re.S).group(1)  # noqa: E731
    assert "Custom policy" in defences(custom) and "SQRT policy, 3 lines" in defences(custom)
    assert "None" not in defences(custom)
    assert "None" in defences(plain) and "Custom policy" not in defences(plain)


def test_a_new_accounts_zero_balance_is_not_an_error(client_of, settings):
    settings.CREDITS_ENFORCED = True
    newcomer = UserFactory()
    html = client_of(newcomer).get(reverse("dashboard:credits")).content.decode()
    balance = re.search(r'<div class="kpi kpi-lg" id="balance">.*?</div>', html, re.S).group(0)
    assert "$0.00" in balance and " bad" not in balance and "zero" in balance
    assert "No credit yet" in html and "alert-error" not in html  # still says why requests would be refused


def test_overview_cards_come_in_whole_rows(client_of, user):
    key, _ = make_key(user, "single-llm")
    record(usage(key, datetime.now(UTC) - timedelta(minutes=5), latency_ms=38.0))
    html = client_of(user).get(reverse("dashboard:overview"), {"range": "24h"}).content.decode()
    cards = re.search(r'<section class="kpis kpis-6" id="kpis">(.*?)</section>', html, re.S).group(1)
    assert cards.count('class="kpi"') == 6


def test_search_marks_the_words_and_says_where_else_they_were_found(client_of, user):
    key, _ = make_key(user, "single-llm")
    first = conversation(key, messages=["Flights to Lisbon in May"])
    later = conversation(key, messages=["Plan a trip", "then book the hotel near the Alfama <quarter>"])
    got = rows(client_of(user), q="lisbon")
    assert "Flights to <mark>Lisbon</mark> in May" in got[str(first)] and "Found:" not in got[str(first)]
    got = rows(client_of(user), q="the hotel")
    assert ">Plan a trip</a>" in got[str(later)]  # still named by its first message
    assert "Found: then book <mark>the hotel</mark> near the Alfama &lt;quarter&gt;" in got[str(later)]
