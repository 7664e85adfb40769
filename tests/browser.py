"""Pytest plugin: a Playwright Chromium for the dashboard's browser tests (Debian's /usr/bin/chromium)."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("PLAYWRIGHT_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.skip(f"Chromium not found at {executable} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def dashboard_page(
    browser, base_url: str, *, width: int = 1440, height: int = 900, permissions=()
) -> Iterator:
    """A page in a context of its own; the page's JavaScript errors are collected in ``page.js_errors``."""
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=base_url)
    if permissions:
        context.grant_permissions(list(permissions), origin=base_url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    try:
        yield page
    finally:
        context.close()


def screenshot(page, directory: Path, name: str, *, full_page: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(directory / f"{name}.png"), full_page=full_page)
