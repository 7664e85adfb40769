"""The dashboard's session/usage pages in Debian's Chromium (Playwright) against pytest-django's live_server.

Screenshots go to test-artifacts/sessions/ (gitignored).
"""

from __future__ import annotations

import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the test itself would
# otherwise be refused as "async unsafe". Only this module needs it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from sessions import services  # noqa: E402
from tests.browser import dashboard_page, screenshot  # noqa: E402
from tests.factories import PASSWORD, UserFactory, make_key  # noqa: E402

from .conftest import denied_session_events, session_row, step, usage  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "sessions"
MODELS = [
    ["openai/gpt-5-mini", "openai/gpt-5-nano"],
    ["openai/gpt-5-mini"],
    ["anthropic/claude-sonnet-4.5"],
    ["openai/gpt-4.1"],
]

# JS: does a canvas hold any non-transparent pixel?
CANVAS_DRAWN = """(id) => {
  const c = document.getElementById(id);
  if (!c || !c.width || !c.height) return false;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
  return false;
}"""


@pytest.fixture
def page(browser, live_server, transactional_db):
    with dashboard_page(browser, live_server.url, width=1440) as page:
        yield page


def shot(page, name, full_page=True):
    screenshot(page, ARTIFACTS, name, full_page=full_page)


def login(page, user):
    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture
def world(transactional_db):
    """Alice: two keys, a week of traffic, a denied session; Bob: one session of his own."""
    rng = random.Random(6)
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    support, _ = make_key(
        alice,
        "dual-llm",
        features={
            "agent_arch": "dual-llm",
            "content_classifiers": [{"name": "pii_redaction", "threshold": 0.5}],
        },
    )
    support.name = "Support agent"
    support.save()
    research, _ = make_key(alice, "single-llm")
    research.name = "Research bot"
    research.save()
    bobs_key, _ = make_key(bob, "single-llm")
    services.do_grant_credit(user=alice, amount_usd=Decimal("25"), note="Pilot credit")
    now = datetime.now(UTC)
    events = []
    for i in range(700):
        k = support if rng.random() < 0.65 else research
        at = now - timedelta(minutes=rng.uniform(0, 7 * 24 * 60))
        hour_load = 1 + (at.hour in range(8, 19))
        sid = uuid.uuid1()
        status = rng.choices(["success", "failure", "denied", "open"], [70, 6, 8, 16])[0]
        models = rng.choice(MODELS[:2] if k is support else MODELS[2:])
        lat = rng.lognormvariate(6.2, 0.55) * (1.3 if k is support else 1) * (1.2 if hour_load > 1 else 1)
        code = rng.choices([200, 429, 502, 400], [95, 2, 2, 1])[0]
        events.append(
            session_row(
                k,
                sid,
                at,
                status=status if code == 200 else "failure",
                turns=rng.randint(1, 4),
                models=models,
            )
        )
        for _ in range(rng.randint(1, 3)):
            events.append(
                usage(
                    k,
                    at,
                    session_id=str(sid),
                    models=models,
                    latency_ms=lat,
                    prompt_tokens=rng.randint(400, 4000) * hour_load,
                    completion_tokens=rng.randint(80, 900),
                    status_code=code,
                    error_kind="" if code == 200 else "upstream_5xx",
                )
            )
        if i % 50 == 0:
            events.append(step(k, sid, 1, "user_message", {"text": "Find my last invoice"}, at=at))
    denied = uuid.uuid1()
    events += denied_session_events(support, denied, now - timedelta(minutes=3))
    bobs = uuid.uuid1()
    events += [
        session_row(bobs_key, bobs, now, status="success", turns=1),
        usage(bobs_key, now, session_id=str(bobs)),
    ]
    for start in range(0, len(events), 200):
        services.do_record_events(events[start : start + 200])
    return {"alice": alice, "bob": bob, "support": support, "denied": denied, "bobs_session": bobs}


def test_overview_charts_draw(page, world):
    login(page, world["alice"])
    page.goto("/dashboard/?range=7d")
    page.wait_for_selector("canvas[data-chart='requests'][data-drawn='true']")
    for chart in ("requests", "tokens", "latency", "errors", "by-key", "by-model"):
        assert page.evaluate(CANVAS_DRAWN, f"chart-{chart}"), f"{chart} chart is blank"
    assert page.locator("[data-kpi=requests] .kpi-value").inner_text() != "0"
    assert "bob" not in page.inner_text("main")
    shot(page, "01-overview-7d")
    page.click("#range-tabs >> text=24 h")
    page.wait_for_url("**range=24h**")
    assert page.evaluate(CANVAS_DRAWN, "chart-requests")
    shot(page, "02-overview-24h", full_page=False)
    page.select_option("#id_key", str(world["support"].pk))
    page.wait_for_url(f"**key={world['support'].pk}**")
    assert page.evaluate(CANVAS_DRAWN, "chart-latency")
    shot(page, "03-overview-filtered", full_page=False)
    assert not page.js_errors, page.js_errors


def test_sessions_list_and_denied_inspector(page, world):
    login(page, world["alice"])
    page.goto("/dashboard/sessions/")
    assert page.locator("#sessions-table tbody tr").count() == 25
    assert "of 701 sessions" in page.inner_text("#pagination").replace(",", "")
    shot(page, "04-sessions")
    page.click("#status-tabs >> [data-status=denied]")
    page.wait_for_url("**status=denied**")
    assert all("Denied" in t for t in page.locator("#sessions-table tbody td .status").all_inner_texts())
    page.goto(f"/dashboard/sessions/?status=denied&key={world['support'].pk}")
    shot(page, "05-sessions-denied", full_page=False)

    page.goto(f"/dashboard/sessions/{world['denied']}/")
    call = page.locator("[data-step=tool_call][data-tool=send_email]")
    assert call.get_attribute("data-verdict") == "hard_denied"
    assert "Denied (hard)" in call.inner_text()
    rules = call.locator("[data-rules]").inner_text()
    assert 'hard deny when to.value not in {"alice@example.com"}' in rules and "Only mail the owner" in rules
    assert "mallory@evil.example" in call.inner_text()
    assert page.locator("[data-step=program] .ln").inner_text().split() == ["1", "2", "3", "4"]
    assert "__non_executable" in page.locator("[data-step=final]").inner_text()
    assert "812 ms" in page.inner_text("#llm-calls")
    shot(page, "06-inspector-denied")
    call.scroll_into_view_if_needed()
    shot(page, "07-inspector-denied-call", full_page=False)
    assert not page.js_errors, page.js_errors


def test_other_users_session_is_404(page, world):
    login(page, world["alice"])
    response = page.goto(f"/dashboard/sessions/{world['bobs_session']}/")
    assert response.status == 404
    shot(page, "08-other-users-session-404", full_page=False)


def test_key_usage_and_credits(page, world):
    login(page, world["alice"])
    page.goto("/keys/")
    usage_link = page.locator(
        f"tr[data-key-id='{world['support'].pk}'] a[href$='/dashboard/keys/{world['support'].pk}/']"
    )
    if usage_link.count():
        usage_link.first.click()
    else:
        page.goto(f"/dashboard/keys/{world['support'].pk}/")
    page.wait_for_selector("canvas[data-chart='requests'][data-drawn='true']")
    assert page.evaluate(CANVAS_DRAWN, "chart-requests")
    assert "$0.31" in page.inner_text("#key-price")
    shot(page, "09-key-usage")
    page.goto("/dashboard/credits/")
    page.wait_for_selector("canvas[data-chart='cost'][data-drawn='true']")
    assert page.evaluate(CANVAS_DRAWN, "chart-cost")
    assert "Pilot credit" in page.inner_text("#grants")
    shot(page, "10-credits")
    assert not page.js_errors, page.js_errors


def test_configure_form_shows_the_price_live(page, tmp_path, settings):
    """``{% price_estimate %}`` in the Configure defences form (added to the colleague's template here if it
    is not there yet) prices the edited configuration as it changes."""
    from django.test.utils import override_settings

    src = Path(settings.BASE_DIR, "templates/apikeys/key_configure.html").read_text()
    if "price_estimate" not in src:
        src = src.replace("{% load static %}", "{% load static dashboard %}", 1).replace(
            '<span class="savebar-summary muted" id="config-summary"></span>',
            '<span class="savebar-summary muted" id="config-summary"></span>{% price_estimate %}',
            1,
        )
    (tmp_path / "apikeys").mkdir()
    (tmp_path / "apikeys" / "key_configure.html").write_text(src)
    engines = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    with override_settings(TEMPLATES=engines):
        user = UserFactory()
        key, _ = make_key(user, "dual-llm")
        login(page, user)
        page.goto(f"/keys/{key.pk}/configure/")
        total = page.locator("#price-estimate [data-price-total]")
        page.wait_for_selector("#price-estimate:not([hidden])")
        assert total.inner_text() == "$0.30"  # base 0.10 + Dual LLM 0.20
        page.locator("[data-classifier=pii_redaction] .defence-head").click()
        page.wait_for_function("document.querySelector('[data-price-total]').textContent === '$0.31'")
        page.locator("label.option-card[data-arch=single-llm]").click()
        page.wait_for_function("document.querySelector('[data-price-total]').textContent === '$0.21'")
        shot(page, "11-configure-price", full_page=False)
        assert not page.js_errors, page.js_errors
