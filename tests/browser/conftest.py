"""Real Chromium (Debian's, driven by Playwright; its own browser download does not work here)."""

import os
import shutil

import pytest

from tests.conftest import require

CHROMIUM = os.environ.get("FLOWSITE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(tmp_path):
    require("Chromium", None if shutil.which(CHROMIUM) else f"{CHROMIUM} is not installed")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.set_default_timeout(15_000)
        page = context.new_page()
        # What the pages' Content-Security-Policy blocked: a broken part of a page, unless
        # the test takes it out as expected.
        page.refused_by_csp = refused = []
        page.on(
            "console",
            lambda message: (
                "Content Security Policy" in message.text
                and refused.append(f"{page.url}: {message.text}")
            ),
        )
        yield page
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    assert not refused, "\n".join(refused)
