"""Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium) against a live server.

Without Chromium they are skipped, unless E2E_REQUIRED=1 (as in CI), where that is a failure.
"""

import os
import shutil

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls in these tests are fine.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


# Function-scoped on purpose: Playwright's event loop changes which database connection Django's
# context-local lookup returns, so it must start after pytest-django has restored the test data.
@pytest.fixture
def browser():
    if not os.path.exists(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("E2E_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()
        # Connections opened while Playwright's loop ran live in that context: close them here,
        # or the test database cannot be dropped at the end of the run.
        from django.db import connections

        connections.close_all()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()


def login(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/models/")


SCREENSHOTS = os.environ.get("E2E_SCREENSHOTS")  # a folder: the browser tests save screenshots there


def shoot(page, name: str) -> None:
    """A full-page screenshot `<name>.png` in $E2E_SCREENSHOTS, to look at; nothing when it is not set."""
    if SCREENSHOTS:
        os.makedirs(SCREENSHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


@pytest.fixture
def e2e_lake(tmp_path):
    """A lake catalog "prod" of this test's own. The live server runs in this process, so changing
    settings here reaches it."""
    from django.conf import settings

    original = settings.WAREHOUSE_CATALOGS, settings.WAREHOUSE_DEFAULT_CATALOG
    settings.WAREHOUSE_CATALOGS, settings.WAREHOUSE_DEFAULT_CATALOG = {"prod": (tmp_path / "lake").as_uri()}, "prod"
    yield tmp_path / "lake"
    settings.WAREHOUSE_CATALOGS, settings.WAREHOUSE_DEFAULT_CATALOG = original
