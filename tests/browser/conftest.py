"""Browser tests: Debian's chromium driven by Playwright against a live test server.

Screenshots go to screenshots/ (ignored by git), named by engine and step, for a person
to look at. Without /usr/bin/chromium the tests skip with the install command, except
when GUILDHALL_REQUIRE_BROWSER=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "screenshots"
PASSWORD = "correct-horse-battery-staple"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser():
    """One chromium per test module; stopped after it, since Playwright's sync API keeps
    an event loop running in this thread that would trip later tests' asyncio.run()."""
    if not CHROMIUM.exists():
        reason = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("GUILDHALL_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests
    # make between browser steps are still plain synchronous calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
    try:
        yield launched
    finally:
        launched.close()
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as screenshots/<engine>-<name>.png."""
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{connection.vendor}-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def backup_dir(tmp_path):
    """A private BACKUP_DIR; override_settings, so that the live server's thread sees it too."""
    with override_settings(BACKUP_DIR=tmp_path / "backups"):
        yield tmp_path / "backups"


@pytest.fixture
def superuser(transactional_db) -> User:
    return User.objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def member(transactional_db) -> User:
    return User.objects.create_user("member", "member@example.com", PASSWORD)


def log_in(page, user: User) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
