"""/api/v1/guilds/{guild}/timers/bulk-jobs: list, follow, start (add, clear) and cancel bulk timer changes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django_q.models import OrmQ

from guilds.services.directory import DirectoryBatch, GuildSeen, RoleSeen, directory_record
from ops.api_tokens import api_token_create
from tests.api.conftest import GUILD, OTHER_GUILD, bearer, grant, post
from timers.models import AllowedRole, BulkJob, BulkState
from timers.services.bulk import bulk_job_claim, bulk_job_create, bulk_job_step, bulk_job_total

pytestmark = pytest.mark.django_db
ROLE, HOLDERS = 300000000000000001, 300000000000000002
JOBS = f"/api/v1/guilds/{GUILD}/timers/bulk-jobs"


def caller(*permissions: str) -> tuple[User, object]:
    name = f"bulk-caller-{User.objects.count()}"
    user = grant(User.objects.create_user(name, password="pw-caller-123", is_staff=True), *permissions)
    _, key = api_token_create(user=user, name="bulk", created_by=None)
    return user, bearer(key)


def queued() -> list[tuple[str, tuple]]:
    return [(q.task["func"], tuple(q.task["args"])) for q in OrmQ.objects.order_by("pk")]


def test_it_starts_a_bulk_add_queued_for_the_worker_as_the_dashboard_does(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, f"{JOBS}/add", {"role_id": str(ROLE), "duration": "30d", "holders_of": str(HOLDERS)})
    assert response.status_code == 201, response.content
    data = response.json()
    job = BulkJob.objects.get()
    assert (job.kind, job.role_id, job.holders_of_role_id, job.seconds, job.state) == (
        "add",
        ROLE,
        HOLDERS,
        30 * 86400,
        "pending",
    )
    assert data["id"] == job.pk and data["duration"] == "30d" and data["progress"] == "not started"
    assert data["role_id"] == str(ROLE) and data["holders_of_role_id"] == str(HOLDERS)
    assert queued() == [("bots.bulk.bulk_job_run", (job.pk,))]


def test_a_bulk_add_without_holders_of_gives_the_role_to_its_own_holders(api):
    response = post(api, f"{JOBS}/add", {"role_id": ROLE, "duration": 90})
    assert response.status_code == 201 and response.json()["seconds"] == 90 * 60
    assert BulkJob.objects.get().holders_of_role_id == ROLE


def test_it_starts_a_bulk_clear(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, f"{JOBS}/clear", {"role_id": str(ROLE)})
    assert response.status_code == 201
    job = BulkJob.objects.get()
    assert (job.kind, job.seconds, job.holders_of_role_id) == ("clear", None, None)
    assert response.json()["kind"] == "clear" and response.json()["duration"] is None
    assert queued() == [("bots.bulk.bulk_job_run", (job.pk,))]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"role_id": str(ROLE), "duration": "soon"}, 400, "Write a duration like"),
        ({"role_id": str(ROLE), "duration": "400d"}, 400, "at most 365 days"),
        ({"role_id": str(ROLE)}, 422, "duration"),
        ({"role_id": "-4", "duration": "1d"}, 422, "role_id"),
        ({"role_id": str(ROLE), "duration": "1d", "kind": "clear"}, 201, ""),  # unknown fields are ignored
    ],
)
def test_it_refuses_bad_input_and_starts_nothing(api, body, status, words):
    response = post(api, f"{JOBS}/add", body)
    assert response.status_code == status, response.content
    assert words in response.content.decode()
    assert BulkJob.objects.exists() == (status == 201)


def test_it_says_why_the_service_refused(api):
    AllowedRole.objects.create(guild_id=GUILD, role_id=HOLDERS)
    response = post(api, f"{JOBS}/add", {"role_id": str(ROLE), "duration": "1d"})
    assert response.status_code == 400 and "is not on this server's list of timed roles" in response.json()["detail"]
    running = bulk_job_create(guild_id=GUILD, kind="clear", role_id=HOLDERS, actor_id=None)
    refused = post(api, f"{JOBS}/clear", {"role_id": str(ROLE)})
    assert refused.status_code == 400 and f"Bulk job #{running.pk}" in refused.json()["detail"]
    assert BulkJob.objects.count() == 1


def test_an_add_needs_add_and_a_clear_needs_change(django_capture_on_commit_callbacks):
    _, adder = caller("timers.view_timedrole", "timers.add_timedrole")
    refused = post(adder, f"{JOBS}/clear", {"role_id": str(ROLE)})
    assert refused.status_code == 403 and "timers.change_timedrole" in refused.json()["detail"]
    assert not BulkJob.objects.exists()
    assert post(adder, f"{JOBS}/add", {"role_id": str(ROLE), "duration": "1d"}).status_code == 201


def test_a_viewer_may_follow_but_not_start_or_cancel():
    job = bulk_job_create(guild_id=GUILD, kind="clear", role_id=ROLE, actor_id=None)
    _, viewer = caller("timers.view_timedrole")
    assert viewer.get(f"{JOBS}/{job.pk}").status_code == 200
    for url, body in ((f"{JOBS}/add", {"role_id": str(ROLE), "duration": "1d"}), (f"{JOBS}/{job.pk}/cancel", None)):
        assert post(viewer, url, body).status_code == 403
    assert BulkJob.objects.get().state == BulkState.PENDING and BulkJob.objects.count() == 1
    _, nobody = caller()
    assert nobody.get(JOBS).status_code == 403 and nobody.get(f"{JOBS}/{job.pk}").status_code == 403


def test_a_read_only_token_may_not_start_or_cancel(staff_user):
    job = bulk_job_create(guild_id=GUILD, kind="clear", role_id=ROLE, actor_id=None)
    _, key = api_token_create(user=staff_user, name="ro", created_by=None, read_only=True)
    reader = bearer(key)
    assert reader.get(JOBS).status_code == 200
    for url in (f"{JOBS}/add", f"{JOBS}/clear", f"{JOBS}/{job.pk}/cancel"):
        refused = post(reader, url, {"role_id": str(HOLDERS), "duration": "1d"})
        assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
    assert BulkJob.objects.count() == 1 and not BulkJob.objects.get().cancel_requested


def test_it_shows_progress_and_names(api):
    directory_record(batch=DirectoryBatch(guilds=[GuildSeen(GUILD, "My Server")], roles=[RoleSeen(GUILD, ROLE, "Booster")]))
    job = bulk_job_create(guild_id=GUILD, kind="add", role_id=ROLE, seconds=86400, actor_id=None)
    bulk_job_claim(owner="w", job_id=job.pk)
    bulk_job_total(job_id=job.pk, owner="w", total=1200)
    for member, outcome in ((11, "apply"), (12, "apply"), (13, "skip"), (14, "fail")):
        bulk_job_step(
            job_id=job.pk, owner="w", member_id=member, outcome=outcome, detail="Missing Access" if outcome == "fail" else ""
        )
    data = api.get(f"{JOBS}/{job.pk}").json()
    assert (data["state"], data["total"], data["done"], data["skipped"], data["failed"], data["processed"]) == (
        "running",
        1200,
        2,
        1,
        1,
        4,
    )
    assert data["progress"] == "4 of 1,200 (1 skipped, 1 failed)" and data["detail"] == "Missing Access"
    assert (data["guild_name"], data["role_name"], data["holders_of_role_name"]) == ("My Server", "@Booster", "@Booster")


def test_it_lists_a_guilds_jobs_newest_first_a_page_at_a_time(api):
    from timers.services.bulk import bulk_job_cancel

    ids = []
    for _ in range(5):
        job = bulk_job_create(guild_id=GUILD, kind="clear", role_id=ROLE, actor_id=None)
        bulk_job_cancel(guild_id=GUILD, job_id=job.pk)
        ids.append(job.pk)
    bulk_job_create(guild_id=OTHER_GUILD, kind="clear", role_id=ROLE, actor_id=None)
    first = api.get(JOBS, {"limit": 3}).json()
    second = api.get(JOBS, {"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [j["id"] for j in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    assert api.get(JOBS, {"cursor": "forged"}).status_code == 400
    assert api.get(f"/api/v1/guilds/{OTHER_GUILD}/timers/bulk-jobs/{ids[0]}").status_code == 404


def test_it_cancels_a_waiting_job_at_once_and_a_running_one_at_its_next_member(api):
    waiting = bulk_job_create(guild_id=GUILD, kind="clear", role_id=ROLE, actor_id=None)
    response = post(api, f"{JOBS}/{waiting.pk}/cancel")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    running = bulk_job_create(guild_id=GUILD, kind="clear", role_id=ROLE, actor_id=None)
    bulk_job_claim(owner="w", job_id=running.pk)
    data = post(api, f"{JOBS}/{running.pk}/cancel").json()
    assert data["state"] == "running" and data["cancel_requested"] is True
    again = post(api, f"{JOBS}/{waiting.pk}/cancel")
    assert again.status_code == 404 and "is not under way" in again.json()["detail"]
    assert post(api, f"{JOBS}/999999/cancel").status_code == 404
    elsewhere = post(api, f"/api/v1/guilds/{OTHER_GUILD}/timers/bulk-jobs/{running.pk}/cancel")
    assert elsewhere.status_code == 404 and "no bulk job" in elsewhere.json()["detail"]
