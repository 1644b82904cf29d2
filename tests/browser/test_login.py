"""Logging in to the dashboard, in a real browser."""

import pytest

from tests.browser.conftest import log_in, shot

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_logs_a_superuser_in_to_the_dashboard(page, superuser):
    log_in(page, superuser)
    page.wait_for_selector("#site-name")
    assert page.url.endswith("/admin/")
    assert "Custom commands and cookies" in page.content()
    shot(page, "dashboard")


def test_it_refuses_a_member_who_is_not_staff(page, member):
    log_in(page, member)
    page.wait_for_selector(".errornote")
    assert "/admin/login/" in page.url
    assert "staff account" in page.inner_text(".errornote")
    shot(page, "login-refused")
