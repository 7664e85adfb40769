"""Every dashboard page at phone, tablet, laptop and desktop widths in Chromium (Playwright).

At 390, 768, 1280 and 1920 px: the page never scrolls sideways; every table's last column is in view (or the
table sits in a container that visibly scrolls, with a hint saying so); every button and every navigation link
is inside the viewport. Screenshots go to test-artifacts/responsive/ (gitignored); look at them.
"""

from __future__ import annotations

import importlib
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls of the test would otherwise be refused.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from apikeys.tokens import do_create_access_token  # noqa: E402
from sessions import services  # noqa: E402
from tests.factories import PASSWORD, UserFactory, make_key  # noqa: E402
from tests.sessions.conftest import denied_session_events, session_row, step, usage  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(400)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "responsive"
WIDTHS = (390, 768, 1280, 1920)
POLICY = 'tool "send_email" {\n    hard deny when not (to.value in {"alice@example.com"});\n}'

# Everything that would make a page look broken at this width, as sentences (empty: fine).
LAYOUT_PROBLEMS = """() => {
  const vw = document.documentElement.clientWidth;
  const problems = [];
  const shown = (el) => {
    const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden";
  };
  const name = (el) => el.id ? "#" + el.id : (el.className || el.tagName).toString().trim().split(/\\s+/)[0];
  const page = document.documentElement.scrollWidth;
  if (page > vw) {
    const wide = [...document.querySelectorAll("body *")].filter((el) => el.getBoundingClientRect().right > vw + 1)
      .slice(0, 4).map((el) => name(el) + " ends at " + Math.round(el.getBoundingClientRect().right));
    problems.push("the page is " + page + " px wide (" + wide.join(", ") + ")");
  }
  for (const table of document.querySelectorAll("main table")) {
    if (!shown(table)) continue;
    const wrap = table.closest(".table-wrap") || table.parentElement;
    const limit = Math.min(vw, wrap.getBoundingClientRect().right);
    const hint = wrap.parentElement.querySelector(":scope > .scroll-hint");
    const scrolls = wrap.scrollWidth > wrap.clientWidth + 1 && wrap.classList.contains("is-scrollable")
      && hint && shown(hint);
    const rows = [table.tHead && table.tHead.rows[0], table.tBodies[0] && table.tBodies[0].rows[0]];
    for (const row of rows) {
      if (!row || !shown(row)) continue;
      const cells = [...row.cells].filter(shown);
      const last = cells[cells.length - 1];
      if (last && last.getBoundingClientRect().right > limit + 1 && !scrolls)
        problems.push(name(table) + ": its last column (" + last.innerText.trim().slice(0, 24) + ") ends at "
          + Math.round(last.getBoundingClientRect().right) + " px, out of view (" + Math.round(limit) + ")");
    }
  }
  for (const el of document.querySelectorAll(".btn, .nav-link, .savebar, .kpi")) {
    if (!shown(el) || el.closest(".table-wrap.is-scrollable")) continue;
    const r = el.getBoundingClientRect();
    if (r.left < -1 || r.right > vw + 1)
      problems.push(name(el) + " '" + el.innerText.trim().slice(0, 20) + "' is cut off (" + Math.round(r.left)
        + ".." + Math.round(r.right) + ")");
  }
  return problems;
}"""


def seed_prices():
    """The prices migration 0003 seeds (transactional tests elsewhere flush them)."""
    from sessions.models import Price

    seed = importlib.import_module("sessions.migrations.0003_seed_prices")
    for code, kind, label, usd in seed.DEFAULT_PRICES:
        Price.objects.get_or_create(
            code=code, defaults={"kind": kind, "label": label, "usd_per_million": usd}
        )


@pytest.fixture
def world(transactional_db):
    """Dana with three keys (one with a custom policy, limits and a budget; one revoked) and fourteen sessions,
    all in one hour (a single point on every chart); Newton, signed up a minute ago, with nothing."""
    seed_prices()
    dana, newton = UserFactory(username="dana"), UserFactory(username="newton")
    support, _ = make_key(
        dana,
        "dual-llm",
        features={
            "agent_arch": "dual-llm",
            "content_classifiers": [{"name": "pii_redaction", "threshold": 0.5}],
        },
        policy={"codes": {"code": POLICY, "language": "sqrt"}},
    )
    support.name, support.rpm_limit, support.tpm_limit = "Customer support agent", 120, 200_000
    support.allowed_models, support.budget_nano = ["openai/gpt-5-mini"], 50 * 10**9
    support.save()
    research, _ = make_key(dana, "single-llm", policy={"codes": {"code": POLICY, "language": "sqrt"}})
    research.name = "Research bot"
    research.save()
    old, _ = make_key(dana, "single-llm")
    old.name, old.revoked_at = "Old prototype", datetime.now(UTC) - timedelta(days=2)
    old.save()
    services.do_grant_credit(user=dana, amount_usd=Decimal("25"), note="Pilot credit")
    token, _ = do_create_access_token(
        user=dana, name="Deploy script", expires_at=datetime.now(UTC) + timedelta(days=30)
    )

    hour = (datetime.now(UTC) - timedelta(minutes=10)).replace(minute=0, second=0, microsecond=0)
    events = denied_session_events(support, uuid.uuid1(), hour + timedelta(seconds=30))  # all in one hour
    for i in range(13):
        sid = uuid.uuid1()
        at = hour + timedelta(minutes=5, seconds=-20 * i)
        events += [
            session_row(research, sid, at, status="success", turns=1, models=["anthropic/claude-sonnet-4.5"]),
            step(
                research,
                sid,
                1,
                "user_message",
                {"text": f"Compare the three cheapest flights to Lisbon for trip #{i}"},
                at=at,
            ),
            usage(
                research,
                at,
                session_id=str(sid),
                latency_ms=38.0,
                status_code=200 if i else 502,
                error_kind="" if i else "upstream_5xx",
                models=["anthropic/claude-sonnet-4.5"],
            ),
        ]
    for start in range(0, len(events), 200):
        services.do_record_events(events[start : start + 200])
    return {
        "dana": dana,
        "newton": newton,
        "support": support,
        "research": research,
        "old": old,
        "token": token,
        "denied": events[0]["session_id"],
    }


def signed_in(browser, live_server, user, width):
    context = browser.new_context(viewport={"width": width, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    if user is not None:
        page.goto("/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/keys/")
    return page


def check(page, name, width):
    page.wait_for_load_state("load")
    if page.locator("canvas[data-chart]").count():
        page.wait_for_selector("canvas[data-chart][data-drawn]", state="attached")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{width}-{name}.png"), full_page=True)
    problems = page.evaluate(LAYOUT_PROBLEMS)
    assert not problems, f"{name} at {width} px: " + "; ".join(problems)
    assert not page.js_errors, page.js_errors


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits(browser, live_server, world, width):
    page = signed_in(browser, live_server, world["dana"], width)
    pages = {
        "keys": "/keys/",
        "configure": f"/keys/{world['support'].pk}/configure/",
        "revoke": f"/keys/{world['research'].pk}/revoke/",
        "tokens": "/tokens/",
        "overview": "/dashboard/?range=24h",
        "sessions": "/dashboard/sessions/",
        "sessions-search": "/dashboard/sessions/?q=lisbon",
        "inspector": f"/dashboard/sessions/{world['denied']}/",
        "key-usage": f"/dashboard/keys/{world['support'].pk}/",
        "credits": "/dashboard/credits/",
        "password": "/accounts/password/",
        "create": "/keys/new/",
        "token-revoke": f"/tokens/{world['token'].pk}/revoke/",
        "password-done": "/accounts/password/done/",
    }
    for name, url in pages.items():
        page.goto(url)
        check(page, name, width)
        if name == "configure":  # the sticky save bar, as a phone shows it over the form
            page.screenshot(path=str(ARTIFACTS / f"{width}-configure-viewport.png"))
            bar = page.locator(".savebar").bounding_box()
            assert bar["x"] >= 0 and bar["x"] + bar["width"] <= width and bar["y"] + bar["height"] <= 900
    page.goto("/keys/new/")
    page.fill("#id_name", f"Key made at {width} px")
    page.click("#create-key-form button[type=submit]")
    page.wait_for_url(re.compile(r"/keys/\d+/created/$"))
    check(page, "created", width)
    page.click(".menu-button")
    check(page, "menu", width)
    page.click("text=Log out")
    page.wait_for_load_state()
    check(page, "logged-out", width)
    page.context.close()

    newcomer = signed_in(browser, live_server, world["newton"], width)
    for name, url in {
        "new-keys": "/keys/",
        "new-overview": "/dashboard/",
        "new-sessions": "/dashboard/sessions/",
        "new-credits": "/dashboard/credits/",
    }.items():
        newcomer.goto(url)
        check(newcomer, name, width)
    newcomer.context.close()

    operator = signed_in(browser, live_server, UserFactory(username="olga-operator", is_staff=True), width)
    for name, url in {
        "staff-sessions": "/dashboard/sessions/",
        "staff-credits": "/dashboard/credits/",
    }.items():
        operator.goto(url)  # six tabs (Admin too), every user's sessions with their owner
        check(operator, name, width)
    operator.context.close()

    anonymous = signed_in(browser, live_server, None, width)
    for name, url in {"login": "/accounts/login/", "signup": "/accounts/signup/"}.items():
        anonymous.goto(url)
        check(anonymous, name, width)
    assert anonymous.goto("/dashboard/nowhere/").status == 404
    check(anonymous, "404", width)
    anonymous.context.close()
