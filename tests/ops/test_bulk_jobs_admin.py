"""The dashboard's bulk jobs: start a bulk add or clear, follow its progress, cancel it; each needs the timers' permission."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from timers.models import AllowedRole, BulkJob, BulkKind, BulkState
from timers.services.bulk import bulk_job_claim, bulk_job_create

GUILD, ROLE, HOLDERS = 557, 9001, 9002
pytestmark = pytest.mark.django_db
ADD_URL = "admin:timers_bulkjob_add"


def login(client, *perms: str) -> User:
    user = User.objects.create_user("staff", password="pw-staff-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client.force_login(user)
    return user


def form(**changes) -> dict:
    return {
        "guild_id": str(GUILD),
        "kind": "add",
        "role_id": str(ROLE),
        "duration": "30d",
        "holders_of_role_id": str(HOLDERS),
    } | changes


def test_it_starts_a_bulk_add_queued_for_the_worker(client, django_capture_on_commit_callbacks):
    login(client, "view_timedrole", "add_timedrole")
    with django_capture_on_commit_callbacks() as queued:
        saved = client.post(reverse(ADD_URL), form())
    assert saved.status_code == 302, saved.content.decode()[:3000]
    job = BulkJob.objects.get()
    assert (job.kind, job.role_id, job.holders_of_role_id, job.seconds, job.state) == (
        "add",
        ROLE,
        HOLDERS,
        30 * 86400,
        "pending",
    )
    assert len(queued) == 1  # the worker's task, once the job is saved
    page = client.get(reverse("admin:timers_bulkjob_changelist")).content.decode()
    assert "not started" in page and "Cancel" in page


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"duration": ""}, "A bulk add needs a duration."),
        ({"duration": "soon"}, "Write a duration like"),
        ({"duration": "400d"}, "at most 365 days"),
        ({"role_id": "-4"}, "greater than or equal to 1"),
        ({"kind": "burn"}, "Select a valid choice"),
    ],
)
def test_it_refuses_bad_input_and_saves_nothing(client, changes, words):
    login(client, "view_timedrole", "add_timedrole", "change_timedrole")
    refused = client.post(reverse(ADD_URL), form(**changes))
    assert refused.status_code == 200 and words in refused.content.decode()
    assert not BulkJob.objects.exists()


def test_it_says_why_the_service_refused(client):
    login(client, "view_timedrole", "add_timedrole")
    AllowedRole.objects.create(guild_id=GUILD, role_id=HOLDERS)
    refused = client.post(reverse(ADD_URL), form(), follow=True)
    assert "is not on this server&#x27;s list of timed roles" in refused.content.decode()
    assert not BulkJob.objects.exists()


def test_it_needs_the_timers_permissions(client):
    login(client)
    assert client.get(reverse("admin:timers_bulkjob_changelist")).status_code == 403
    assert client.post(reverse(ADD_URL), form()).status_code == 403
    assert not BulkJob.objects.exists()


def test_a_clear_needs_change_and_an_add_needs_add(client):
    login(client, "view_timedrole", "add_timedrole")
    refused = client.post(reverse(ADD_URL), form(kind="clear", duration=""))
    assert refused.status_code == 200 and "timers.change_timedrole is needed" in refused.content.decode()
    assert not BulkJob.objects.exists()


def test_it_cancels_a_job_with_change_permission_only(client):
    job = bulk_job_create(guild_id=GUILD, kind=BulkKind.CLEAR, role_id=ROLE, actor_id=None)
    bulk_job_claim(owner="worker", job_id=job.pk)  # running: it stops at its next member
    url = reverse("admin:timers_bulkjob_cancel", args=[job.pk])
    login(client, "view_timedrole")
    assert client.post(url).status_code == 403
    assert not BulkJob.objects.get(pk=job.pk).cancel_requested
    User.objects.get(username="staff").user_permissions.add(Permission.objects.get(codename="change_timedrole"))
    page = client.post(url, follow=True).content.decode()
    assert f"Bulk job #{job.pk} stops after the member it is on." in page and "cancelling…" in page
    job.refresh_from_db()
    assert job.cancel_requested and job.state == BulkState.RUNNING
