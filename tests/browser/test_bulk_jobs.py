"""The dashboard's bulk jobs in a browser: start a bulk add, see it listed with its progress, cancel one."""

import pytest

from guilds.models import Guild, Role
from tests.browser.conftest import log_in, shot
from timers.models import BulkJob, BulkKind, BulkState
from timers.services.bulk import bulk_job_claim, bulk_job_create, bulk_job_step, bulk_job_total

pytestmark = pytest.mark.django_db(transaction=True)
GUILD, ROLE, HOLDERS, OTHER_GUILD = 626262626262626262, 727272727272727272, 737373737373737373, 636363636363636363


def test_it_starts_follows_and_cancels_bulk_jobs(page, superuser):
    # A job some way through, in another server, to show progress next to the new one.
    running = bulk_job_create(guild_id=OTHER_GUILD, kind=BulkKind.CLEAR, role_id=ROLE, actor_id=None)
    bulk_job_claim(owner="worker", job_id=running.pk)
    bulk_job_total(job_id=running.pk, owner="worker", total=1200)
    for member_id in range(1, 321):
        bulk_job_step(job_id=running.pk, owner="worker", member_id=member_id, outcome="skip" if member_id % 16 == 0 else "fail")

    Guild.objects.create(guild_id=GUILD, name="Night Owls")
    Role.objects.create(guild_id=GUILD, role_id=ROLE, name="Booster")
    Role.objects.create(guild_id=GUILD, role_id=HOLDERS, name="Supporter")
    log_in(page, superuser)
    page.goto("/admin/timers/bulkjob/add/")
    page.fill("#id_guild_id", str(GUILD))
    page.select_option("#id_kind", label="bulk add")
    page.fill("#id_role_id", str(ROLE))
    page.fill("#id_duration", "forever")
    page.fill("#id_holders_of_role_id", str(HOLDERS))
    shot(page, "bulk-job-add")
    page.click("input[name=_save]")
    page.wait_for_selector(".field-duration .errorlist")
    assert "Write a duration like" in page.inner_text(".field-duration .errorlist")
    assert not BulkJob.objects.filter(guild_id=GUILD).exists()

    page.fill("#id_duration", "30d")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    job = BulkJob.objects.get(guild_id=GUILD)
    assert (job.seconds, job.holders_of_role_id, job.state) == (30 * 86400, HOLDERS, BulkState.PENDING)
    page.goto("/admin/timers/bulkjob/")
    table = page.inner_text("#result_list")
    assert "320 of 1,200 (20 skipped, 300 failed)" in table and "not started" in table
    assert "give @Booster (727272727272727272) for 30d to holders of @Supporter (737373737373737373)" in table
    assert "Night Owls (626262626262626262)" in table
    shot(page, "bulk-jobs")

    page.click(f"#result_list tr:has-text('{OTHER_GUILD}') button:has-text('Cancel')")
    page.wait_for_selector(".messagelist")
    assert f"Bulk job #{running.pk} stops after the member it is on." in page.inner_text(".messagelist")
    assert BulkJob.objects.get(pk=running.pk).cancel_requested
    assert "cancelling…" in page.inner_text("#result_list")
    shot(page, "bulk-jobs-cancelling")
