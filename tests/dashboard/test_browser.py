"""The dashboard in Debian's Chromium through Playwright (pytest-django's live_server).

Screenshots of every page go to test-artifacts/dashboard/ (gitignored).
"""

import os
import re
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the test itself
# would otherwise be refused as "async unsafe". Only this module needs it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from apikeys.models import ApiKey  # noqa: E402
from tests.browser import dashboard_page, screenshot  # noqa: E402
from tests.factories import UserFactory, make_key  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


@pytest.fixture
def page(browser, live_server, transactional_db):
    with dashboard_page(
        browser, live_server.url, width=1440, permissions=("clipboard-read", "clipboard-write")
    ) as page:
        yield page


def shot(page, name, full_page=True):
    screenshot(page, ARTIFACTS, name, full_page=full_page)


def test_dashboard_flow(page):
    # sign up
    page.goto("/accounts/signup/")
    shot(page, "01-signup")
    page.fill("#id_username", "carol")
    page.fill("#id_password1", "a-long-Passphrase-77")
    page.fill("#id_password2", "a-long-Passphrase-77")
    page.click("button[type=submit]")
    page.wait_for_url("**/keys/")
    assert page.locator("#empty-state").is_visible()
    shot(page, "02-keys-empty")

    # create a Dual-LLM key; a double click must create one key only
    page.click("text=Create your first key")
    page.fill("#id_name", "Support agent")
    page.locator("label.option-card[data-arch=dual-llm]").click()
    shot(page, "03-create")
    page.dblclick("#create-key-form button[type=submit]")
    page.wait_for_url(re.compile(r"/keys/\d+/created/$"))
    secret = page.input_value("#secret-value")
    assert secret.startswith("sq-") and len(secret) > 40
    assert page.locator("#copy-secret").is_visible()
    assert "shown only once" in page.inner_text("#secret-panel")
    page.click("#copy-secret")
    page.wait_for_selector("#copy-secret.copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    shot(page, "04-created-secret")
    key = ApiKey.objects.get(user__username="carol")
    assert ApiKey.objects.count() == 1 and secret.startswith(key.prefix) and key.arch == "dual-llm"

    page.reload()
    assert page.locator("#secret-value").count() == 0
    assert secret not in page.content() and key.prefix in page.inner_text("#secret-gone")
    shot(page, "05-created-reload")

    # the list: only the prefix
    page.click("text=Done")
    page.wait_for_url("**/keys/")
    row = page.locator(f"tr[data-key-id='{key.pk}']")
    assert key.prefix in row.inner_text() and secret not in page.content()
    shot(page, "06-keys-list")

    # configure
    row.locator("text=Configure").click()
    page.wait_for_url(f"**/keys/{key.pk}/configure/")
    shot(page, "07-configure", full_page=False)
    page.locator("[data-classifier=pii_redaction] .defence-head").click()
    page.locator("[data-blocker=url_blocker] .defence-head").click()
    page.locator("label.option-card[data-arch=single-llm]").click()
    page.click("#advanced > summary")
    features = page.input_value("#id_features_json")
    assert (
        '"agent_arch": "single-llm"' in features and "pii_redaction" in features and "url_blocker" in features
    )
    assert '"max_n_turns": 50' in page.input_value("#id_config_json")  # single-LLM preset followed the switch
    assert "PII redaction" in page.inner_text("#config-summary")
    page.locator("[data-classifier=pii_redaction]").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, 120)")
    shot(page, "08-configure-edited", full_page=False)
    page.locator("#id_features_json").scroll_into_view_if_needed()
    shot(page, "08b-configure-advanced", full_page=False)

    page.fill("#id_config_json", '{"fsm": {"max_n_turns": 0}')  # broken JSON
    with page.expect_navigation():
        page.click(".savebar button[type=submit]")
    assert "Nothing was saved" in page.inner_text("#form-error-summary")
    config_error = page.locator("#id_config_json").locator("xpath=ancestor::div[contains(@class,'field')][1]")
    assert "Invalid JSON" in config_error.inner_text()
    assert page.locator("#advanced").get_attribute("open") is not None
    shot(page, "09-configure-error", full_page=False)
    page.locator("#id_config_json").scroll_into_view_if_needed()
    shot(page, "09b-configure-error-field", full_page=False)
    key.refresh_from_db()
    assert key.arch == "dual-llm" and "content_classifiers" not in key.features  # nothing saved

    page.fill("#id_config_json", '{"fsm": {"max_n_turns": 0}}')  # valid JSON, invalid value
    with page.expect_navigation():
        page.click(".savebar button[type=submit]")
    assert "fsm.max_n_turns: Input should be greater than or equal to 1" in config_error.inner_text()

    page.fill("#id_config_json", '{"fsm": {"max_n_turns": 3}}')
    page.click(".savebar button[type=submit]")
    page.wait_for_url("**/keys/")
    assert "Saved the configuration" in page.inner_text(".messages")
    row = page.locator(f"tr[data-key-id='{key.pk}']")
    text = row.inner_text()
    assert "PII redaction" in text and "URL blocker" in text and "Single LLM" in text
    key.refresh_from_db()
    assert key.arch == "single-llm" and key.config == {"fsm": {"max_n_turns": 3}}
    assert key.features["content_classifiers"][0]["name"] == "pii_redaction"
    shot(page, "10-keys-configured")

    # revoke, with a confirmation page
    row.locator("text=Revoke").click()
    page.wait_for_url(f"**/keys/{key.pk}/revoke/")
    shot(page, "11-revoke-confirm")
    page.click("#confirm-revoke")
    page.wait_for_url("**/keys/")
    row = page.locator(f"tr[data-key-id='{key.pk}']")
    assert "Revoked" in row.inner_text()
    key.refresh_from_db()
    assert key.revoked_at is not None
    shot(page, "12-keys-revoked")

    # overview placeholder and the account menu
    page.click("nav >> text=Overview")
    page.wait_for_url("**/dashboard/")
    assert "No usage yet" in page.inner_text("main")
    page.click(".menu-button")
    shot(page, "13-overview-menu", full_page=False)

    # another user's key is a 404
    other_key, _ = make_key(UserFactory())
    response = page.goto(f"/keys/{other_key.pk}/configure/")
    assert response.status == 404
    shot(page, "14-not-found")
    assert page.goto(f"/keys/{other_key.pk}/revoke/").status == 404


def test_login_page(page):
    page.goto("/accounts/login/")
    page.fill("#id_username", "nobody")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    page.wait_for_selector(".alert-error")
    shot(page, "00-login-error", full_page=False)

    # a form posted without its CSRF cookie (expired, cleared) gets the friendly 403 page
    page.context.clear_cookies()
    page.fill("#id_password", "wrong")
    with page.expect_navigation() as nav:
        page.click("button[type=submit]")
    assert nav.value.status == 403
    assert "This form has expired" in page.inner_text("body")
    shot(page, "16-csrf-403", full_page=False)


def test_configure_json_and_fields_stay_in_sync(page):
    from tests.factories import PASSWORD

    user = UserFactory()
    key, _ = make_key(user, arch="dual-llm")
    page.goto(f"/keys/{key.pk}/configure/")
    page.wait_for_url("**/accounts/login/**")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/keys/{key.pk}/configure/")

    page.click("#advanced > summary")
    page.fill(
        "#id_features_json",
        '{"agent_arch": "single-llm", "content_classifiers": '
        '[{"name": "toxicity_filter", "threshold": 0.8, "mode": "strict"}], '
        '"content_blockers": [{"name": "file_blocker"}]}',
    )
    assert page.is_checked("#id_toxicity_filter") and page.is_checked("#id_file_blocker")
    assert page.input_value("#id_toxicity_filter_threshold") == "0.8"
    assert page.input_value("#id_toxicity_filter_mode") == "strict"
    assert page.is_checked("input[name=arch][value=single-llm]")
    assert '"max_n_turns": 50' in page.input_value("#id_config_json")

    page.fill("#id_policy_code", 'tool "send_email" {\n    hard deny when "pii" in body.tags;\n}')
    assert json_of(page, "#id_policy_json")["codes"]["code"].startswith('tool "send_email"')
    assert page.inner_text("#policy-section .gutter").split() == ["1", "2", "3"]
    page.fill("#id_features_json", "{oops")
    assert page.is_visible("[data-json-hint]")
    page.click("#reset-preset")
    assert json_of(page, "#id_features_json") == {"agent_arch": "single-llm"}
    assert not page.is_checked("#id_toxicity_filter") and page.input_value("#id_policy_code") == ""
    shot(page, "15-configure-synced", full_page=False)


def json_of(page, selector):
    import json

    return json.loads(page.input_value(selector))


def test_generate_policy_helper_fills_the_editor(page, upstream_settings, fake_upstream):
    from apikeys import services
    from tests import fake_upstream as fu
    from tests.factories import PASSWORD

    user = UserFactory()
    key, _ = make_key(user, arch="dual-llm")
    services.do_set_provider_credential(
        provider="openrouter", api_key="sk-server", allowed_models=["gpt-5-mini"]
    )
    fake_upstream.push(fu.text('```sqrt\ntool "delete_file" {\n    must deny always;\n}\n```'))
    page.goto(f"/keys/{key.pk}/configure/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/keys/{key.pk}/configure/")
    page.click("#generate-policy > summary")
    page.fill("#gen-description", "Never delete files.")
    page.click("#gen-button")
    page.wait_for_selector("#gen-status.success")
    assert 'tool "delete_file"' in page.input_value("#id_policy_code")
    assert json_of(page, "#id_policy_json")["codes"]["code"].startswith('tool "delete_file"')
    shot(page, "17-generate-policy", full_page=False)
    key.refresh_from_db()
    assert not key.policy.get("codes", {}).get("code")  # nothing saved until the user saves
    page.click("button[type=submit][data-once]")
    page.wait_for_url("**/keys/")
    key.refresh_from_db()
    assert key.policy["codes"]["code"].startswith('tool "delete_file"')
