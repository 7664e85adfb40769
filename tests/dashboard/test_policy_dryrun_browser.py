"""Dry-run and versions on the configure page in Debian's Chromium through Playwright: the edited policy's
dry-run over recorded calls (with the link into the inspector), a version diff and a one-click revert, at
1280 and 390 px. Screenshots go to test-artifacts/dashboard/ (gitignored)."""

import os
from pathlib import Path

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread

from apikeys import services  # noqa: E402
from apikeys.models import ApiKey  # noqa: E402
from tests.browser import dashboard_page, screenshot  # noqa: E402
from tests.factories import PASSWORD, UserFactory, make_key  # noqa: E402
from tests.policy_recording import record_tool_calls  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
DENY_DELETE = 'tool "delete_file" {\n    hard deny always;\n}\n'
DENY_MALLORY = 'tool "send_email" {\n    hard deny when to.value == "mallory@evil.example";\n}\n'


@pytest.fixture
def page(browser, live_server, transactional_db):
    with dashboard_page(browser, live_server.url, width=1280) as page:
        yield page


def shot(page, name, full_page=False):
    screenshot(page, ARTIFACTS, name, full_page=full_page)


def set_policy(page, code: str) -> None:
    """Type into the code editor when it is there, else into the plain textarea (no bundle)."""
    editor = page.locator("#policy-editor .cm-content")
    if editor.count():
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.press("Delete")
        page.keyboard.insert_text(code)
    else:
        page.fill("#id_policy_code", code)
    page.wait_for_function(
        "code => document.querySelector('#id_policy_code').value.trim() === code.trim()", arg=code
    )


def key_with_traffic():
    user = UserFactory()
    key, _ = make_key(user, arch="single-llm")
    services.do_update_api_key_config(
        key=key,
        arch=key.arch,
        features=key.features,
        config=key.config,
        policy={**key.policy, "codes": {"code": DENY_DELETE, "language": "sqrt"}},
    )
    first = record_tool_calls(
        key,
        [
            ("send_email", {"to": "alice@example.com", "body": "hi"}),
            ("send_email", {"to": "mallory@evil.example", "body": "secrets"}),
            ("search", {"q": "invoices"}),
        ],
    )
    record_tool_calls(
        key,
        [
            ("send_email", {"to": "mallory@evil.example", "body": "more"}),
            ("delete_file", {"path": "/tmp/x"}),
            ("send_email", {"to": "mallory@evil.example", "body": "again"}),
        ],
    )
    return user, key, first


def test_dry_run_then_diff_and_revert(page):
    user, key, first = key_with_traffic()
    saved = ApiKey.objects.values("policy").get(pk=key.pk)
    page.goto(f"/keys/{key.pk}/configure/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/keys/{key.pk}/configure/")

    set_policy(page, DENY_MALLORY)
    page.click("#dryrun-button")
    summary = page.wait_for_selector("[data-dryrun-summary]")
    assert summary.inner_text().startswith(
        "Would deny 3 of 6 recorded calls, in 2 sessions; would allow 1 call denied today."
    )
    assert page.locator("[data-change=newly_denied]").count() == 3
    assert page.locator("[data-change=newly_allowed][data-tool=delete_file]").count() == 1
    assert "hard deny when to.value ==" in page.inner_text("[data-change=newly_denied] [data-rule] >> nth=0")
    page.locator("#policy-dryrun").scroll_into_view_if_needed()
    shot(page, "30-dryrun-1280")
    assert ApiKey.objects.values("policy").get(pk=key.pk) == saved  # the dry-run saved nothing

    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#policy-dryrun").scroll_into_view_if_needed()
    shot(page, "31-dryrun-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 900})

    link = page.locator(f"[data-change=newly_denied] a[href*='{first}']")
    assert link.get_attribute("href").endswith(f"/dashboard/sessions/{first}/#step-2")
    link.click()
    page.wait_for_url(f"**/dashboard/sessions/{first}/#step-2")
    assert page.inner_text("#step-2 [data-policy-version]") == "policy v2"
    assert (
        page.evaluate("document.getElementById('step-2').getBoundingClientRect().top") >= 60
    )  # not under the bar
    shot(page, "35-inspector-version-1280")

    page.goto(f"/keys/{key.pk}/configure/#policy-versions")
    assert page.locator("#policy-versions tr.current").get_attribute("data-version") == "2"
    page.click("#version-2 [data-version-diff-link]")
    page.wait_for_selector("[data-version-diff] .diff-add")
    assert '+tool "delete_file" {' in page.inner_text("[data-version-diff] .version-diff")
    page.locator("#policy-versions").scroll_into_view_if_needed()
    shot(page, "32-versions-diff-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#policy-versions").scroll_into_view_if_needed()
    shot(page, "33-versions-diff-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 900})

    page.click("#version-1 [data-revert]")
    page.wait_for_selector("#version-3.current")
    assert "Restored version 1" in page.inner_text("body")
    key.refresh_from_db()
    assert key.current_version.number == 3 and key.current_version.reverted_from == 1
    assert not (key.policy.get("codes") or {}).get("code")
    page.locator("#policy-versions").scroll_into_view_if_needed()
    shot(page, "34-reverted-1280")
    assert page.js_errors == []
