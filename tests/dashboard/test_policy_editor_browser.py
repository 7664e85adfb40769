"""The policy editor in Debian's Chromium through Playwright: live diagnostics while typing, completion from
the key's recorded tool calls, the Generate-policy confirmation, the per-defence prices.

Screenshots go to test-artifacts/dashboard/ (gitignored), at 1280 and 390 px.
"""

import os
import uuid
from pathlib import Path

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread

from sessions.models import RelaySession, SessionEvent  # noqa: E402
from tests.browser import dashboard_page, screenshot  # noqa: E402
from tests.factories import PASSWORD, UserFactory, make_key  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
BROKEN = 'tool "send_email" {\n    hard deny when "pii" in body.tags\n    must allow always;\n}\n'


@pytest.fixture
def page(browser, live_server, transactional_db):
    with dashboard_page(browser, live_server.url, width=1280) as page:
        yield page


def shot(page, name, full_page=False):
    screenshot(page, ARTIFACTS, name, full_page=full_page)


def open_configure(page, user, key):
    page.goto(f"/keys/{key.pk}/configure/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/keys/{key.pk}/configure/")
    page.wait_for_selector("#policy-editor .cm-editor")


def record_calls(key):
    session = RelaySession.objects.create(api_key=key, arch="dual-llm")
    for tool, args in (("send_email", ("to", "body")), ("send_email", ("to",)), ("read_file", ("path",))):
        SessionEvent.objects.create(
            event_id=uuid.uuid4(),
            session=session,
            type="tool_call",
            data={"tool": tool, "args": {a: {"value": "x", "meta": {}} for a in args}},
        )


def test_live_diagnostics_underline_list_and_clear_when_fixed(page):
    user = UserFactory()
    key, _ = make_key(user, arch="dual-llm")
    record_calls(key)
    open_configure(page, user, key)
    assert (
        page.is_hidden("#id_policy_code") or page.locator("#id_policy_code").get_attribute("tabindex") == "-1"
    )

    editor = page.locator("#policy-editor .cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(BROKEN)

    # underlined in the editor, a marker in the gutter, the list under it: where the ';' is missing
    page.wait_for_selector("#policy-editor .cm-lintRange-error")
    page.wait_for_selector("#policy-editor .cm-lint-marker-error")
    problem = page.locator("#policy-problem-list .policy-problem")
    problem.first.wait_for()
    assert problem.count() == 1
    text = problem.inner_text()
    assert "Line 2, col 38" in text and "Missing ';'" in text and "Expected: ';'" in text
    assert page.locator("#policy-editor .cm-lintRange-error").inner_text() == "tags"
    assert "1 problem" in page.inner_text("#policy-status")
    # the textarea (the form field) and the X-Policy document follow the editor
    assert page.input_value("#id_policy_code") == BROKEN
    assert '"pii\\" in body.tags' in page.input_value("#id_policy_json")

    page.locator("#policy-section").scroll_into_view_if_needed()
    shot(page, "20-policy-editor-diagnostics-1280")
    page.hover("#policy-editor .cm-lintRange-error")
    tooltip = page.locator(".cm-tooltip-lint")
    tooltip.wait_for()
    assert "Missing ';'" in tooltip.inner_text() and "Expected: ';'" in tooltip.inner_text()
    shot(page, "20b-policy-editor-tooltip-1280")
    page.mouse.move(0, 0)
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#policy-problems").scroll_into_view_if_needed()
    shot(page, "21-policy-editor-diagnostics-390")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide at 390 px"
    page.set_viewport_size({"width": 1280, "height": 900})

    # clicking the problem puts the cursor where the ';' is missing; typing it there clears everything
    problem.click()
    page.keyboard.type(";")
    page.wait_for_selector("#policy-editor .cm-lintRange-error", state="detached")
    page.wait_for_function("document.getElementById('policy-status').textContent.includes('No problems')")
    assert page.locator("#policy-problem-list .policy-problem").count() == 0
    assert page.locator("#policy-editor .cm-lint-marker-error").count() == 0
    assert page.input_value("#id_policy_code") == BROKEN.replace("body.tags\n", "body.tags;\n")
    shot(page, "22-policy-editor-fixed-1280")

    # completion: tool names, then the argument names that tool was called with
    page.keyboard.press("Control+End")
    page.keyboard.type('tool "se')
    option = page.locator(".cm-tooltip-autocomplete li", has_text="send_email")
    option.wait_for()
    shot(page, "23-policy-editor-complete-tool")
    page.keyboard.press("Enter")
    page.keyboard.press("End")
    page.keyboard.insert_text(" {\n    hard deny when ")
    page.keyboard.type("b")
    page.locator(".cm-tooltip-autocomplete li", has_text="body").wait_for()
    assert page.locator(".cm-tooltip-autocomplete li", has_text="path").count() == 0  # read_file's argument
    shot(page, "24-policy-editor-complete-arg")
    assert not page.js_errors, page.js_errors


def test_the_form_still_saves_what_the_editor_holds(page):
    user = UserFactory()
    key, _ = make_key(user, arch="dual-llm")
    open_configure(page, user, key)
    page.locator("#policy-editor .cm-content").click()
    page.keyboard.insert_text('tool "delete_file" {\n    must deny always;\n}\n')
    page.wait_for_function("document.getElementById('policy-status').textContent.includes('No problems')")
    page.click(".savebar button[type=submit]")
    page.wait_for_url("**/keys/")
    key.refresh_from_db()
    assert key.policy["codes"]["code"] == 'tool "delete_file" {\n    must deny always;\n}\n'
    assert not page.js_errors, page.js_errors


@pytest.fixture
def prices(transactional_db):
    """The price table as the migration seeds it (a transactional test starts from empty tables)."""
    import importlib

    from sessions.models import Price

    seed = importlib.import_module("sessions.migrations.0003_seed_prices")
    for code, kind, label, usd in seed.DEFAULT_PRICES:
        Price.objects.get_or_create(
            code=code, defaults={"kind": kind, "label": label, "usd_per_million": usd}
        )


def test_each_defence_shows_its_price(page, prices):
    user = UserFactory()
    key, _ = make_key(user, arch="dual-llm")
    open_configure(page, user, key)
    assert page.inner_text("[data-defence-price=pii_redaction]").startswith("+$0.01")
    assert page.locator("[data-defence-price]").count() == 6
    page.locator("[data-classifier=toxicity_filter]").scroll_into_view_if_needed()
    shot(page, "25-configure-defence-prices-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("[data-classifier=toxicity_filter]").scroll_into_view_if_needed()
    shot(page, "26-configure-defence-prices-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_generate_policy_asks_before_replacing_the_editors_policy(page, upstream_settings, fake_upstream):
    from apikeys import services
    from tests import fake_upstream as fu

    user = UserFactory()
    key, _ = make_key(user, arch="dual-llm")
    services.do_set_provider_credential(
        provider="openrouter", api_key="sk-server", allowed_models=["gpt-5-mini"]
    )
    open_configure(page, user, key)
    mine = 'tool "read_file" {\n    must allow always;\n}\n'
    page.locator("#policy-editor .cm-content").click()
    page.keyboard.insert_text(mine)

    generated = '```sqrt\ntool "delete_file" {\n    must deny always;\n}\n```'
    page.click("#generate-policy > summary")
    page.fill("#gen-description", "Never delete files.")
    fake_upstream.push(fu.text(generated))
    page.click("#gen-button")
    dialog = page.locator("#gen-confirm")
    dialog.wait_for(state="visible")
    assert 'tool "delete_file"' in page.inner_text("#gen-confirm-preview")
    shot(page, "27-generate-confirm")
    page.click("#gen-confirm [data-confirm=keep]")
    dialog.wait_for(state="hidden")
    assert page.input_value("#id_policy_code") == mine
    assert "Kept your policy" in page.inner_text("#gen-status")

    fake_upstream.push(fu.text(generated))
    page.click("#gen-button")
    dialog.wait_for(state="visible")
    page.click("#gen-confirm [data-confirm=replace]")
    page.wait_for_selector("#gen-status.success")
    assert page.input_value("#id_policy_code").startswith('tool "delete_file"')
    page.wait_for_function(
        "document.querySelector('#policy-editor .cm-content').textContent.includes('delete_file')"
    )
    assert not page.js_errors, page.js_errors


def test_a_cedar_policy_is_highlighted_and_checked_as_cedar(page):
    import json

    user = UserFactory()
    key, _ = make_key(user, arch="dual-llm")
    open_configure(page, user, key)
    page.click("#advanced > summary")
    policy = json.loads(page.input_value("#id_policy_json"))
    policy["codes"] = {"code": "permit(principal action, resource);", "language": "cedar"}
    page.fill("#id_policy_json", json.dumps(policy, indent=2))
    page.wait_for_selector("#policy-editor .cm-content[aria-label='Cedar policy']")
    page.wait_for_selector("#policy-editor .cm-lintRange-error")
    assert "Cedar: Unexpected token `action`" in page.inner_text("#policy-problem-list")
    assert page.input_value("#id_policy_code") == "permit(principal action, resource);"
    assert page.inner_text("#policy-section h2") == "Cedar policy"
    page.locator("#policy-section").scroll_into_view_if_needed()
    shot(page, "28-policy-editor-cedar")
    assert not page.js_errors, page.js_errors
