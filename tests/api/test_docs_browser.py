"""The docs page in Chromium: Swagger UI renders every operation from this server's own assets and schema,
with every request to another host refused."""

import os
from pathlib import Path

import pytest

from tests.browser import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.timeout(120)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "api"


def test_swagger_ui_renders_offline(relay):
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("PLAYWRIGHT_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.skip(f"Chromium not found at {executable} (apt-get install chromium)")
    foreign, log = [], []

    def route(r):
        if r.request.url.startswith(relay):
            return r.continue_()
        foreign.append(r.request.url)
        return r.abort()

    # Playwright runs only inside this block, so its event loop is gone before the database is flushed.
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.route("**/*", route)
            page.on("console", lambda m: log.append(m.text))
            page.on("response", lambda r: log.append(f"{r.status} {r.url}"))
            page.goto(f"{relay}/api/docs/")
            try:
                page.wait_for_selector(".opblock", timeout=20_000)
            except Exception:
                raise AssertionError("\n".join(log)) from None
            text = page.inner_text("body")
            assert "Sequrity Control management API" in text
            for path in (
                "/api/v1/keys/",
                "/api/v1/sessions/{id}/",
                "/api/v1/usage/",
                "/api/v1/policies/validate/",
            ):
                assert path in text, path
            assert page.locator(".btn.authorize").count() == 1  # the bearer token scheme
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "docs.png"))
        finally:
            browser.close()
    assert foreign == []
