"""The timer settings page's leave, missing-role and notice choices, and the reconciliation records, in a browser."""

import pytest
from django.utils import timezone

from tests.browser.conftest import log_in, shot
from timers.models import TimerReconcile, TimerSettings
from timers.services import timer_warnings_set

pytestmark = pytest.mark.django_db(transaction=True)
GUILD = 626262626262626262


def test_it_changes_what_timers_do_when_members_leave_or_lose_the_role(page, superuser):
    timer_warnings_set(guild_id=GUILD, minutes=[60, 10, 1])
    log_in(page, superuser)
    page.goto("/admin/timers/timersettings/")
    page.click(f"#result_list a:has-text('{GUILD}')")
    page.wait_for_selector("#id_on_leave")
    assert page.input_value("#id_on_leave") == "run" and page.input_value("#id_notice") == "off"
    shot(page, "timer-membership-settings")

    page.select_option("#id_on_leave", label="pauses until they rejoin")
    page.select_option("#id_on_role_missing", label="pause the timer")
    page.select_option("#id_notice", label="in a channel")
    page.click("input[name=_save]")
    page.wait_for_selector(".field-notice_channel_id .errorlist")
    assert "channel's id" in page.inner_text(".field-notice_channel_id .errorlist")
    shot(page, "timer-membership-settings-refused")
    assert TimerSettings.objects.get(guild_id=GUILD).on_leave == "run"  # nothing saved

    page.fill("#id_notice_channel_id", "777777777777777777")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    assert "changed successfully" in page.inner_text(".messagelist")
    saved = TimerSettings.objects.get(guild_id=GUILD)
    assert (saved.on_leave, saved.on_role_missing, saved.notice, saved.notice_channel_id) == (
        "pause",
        "pause",
        "channel",
        777777777777777777,
    )
    assert saved.warning_minutes == [60, 10, 1]  # the other fields are untouched
    shot(page, "timer-membership-settings-saved")


def test_it_lists_the_reconciliations(page, superuser):
    TimerReconcile.objects.create(
        guild_id=GUILD,
        finished_at=timezone.now(),
        checked=12,
        restored=2,
        paused=1,
        away=3,
        untracked=4,
        detail="1 member page(s)",
    )
    log_in(page, superuser)
    page.goto("/admin/timers/timerreconcile/")
    page.wait_for_selector("#result_list")
    text = page.inner_text("#result_list")
    assert str(GUILD) in text and "held with no timer" in text.lower() and "roles given back" in text.lower()
    assert page.locator(".object-tools a.addlink").count() == 0
    shot(page, "timer-reconciliations")
