"""/api/v1/timers: list and change timers through the services, and queue the Discord sync."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from tests.api.conftest import GUILD, OTHER_GUILD, post
from timers.models import TimedRole, TimerEvent, TimerState
from timers.services import allowed_role_add, timer_set

URL = "/api/v1/timers"
MEMBER, OTHER_MEMBER = 200000000000000001, 200000000000000002
ROLE, OTHER_ROLE = 300000000000000001, 300000000000000002
CHANNEL = 500000000000000001
pytestmark = pytest.mark.django_db


def _set(member=MEMBER, role=ROLE, guild=GUILD, hours=2) -> TimedRole:
    return timer_set(guild_id=guild, member_id=member, role_id=role, duration=timedelta(hours=hours), actor_id=None).timer


def _queued() -> list[tuple[str, tuple]]:
    """(function, args) of every task waiting in django-q's ORM queue."""
    return [(row.task["func"], row.task["args"]) for row in OrmQ.objects.order_by("pk")]


def _sync_of(timer_id: int) -> tuple[str, tuple]:
    return ("bots.tasks.timer_role_apply", (timer_id,))


def test_it_creates_a_timer_and_queues_the_role_grant(api, django_capture_on_commit_callbacks):
    body = {"guild_id": str(GUILD), "member_id": MEMBER, "role_id": str(ROLE), "duration": "1d 12h", "channel_id": str(CHANNEL)}
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, URL, body)
    assert response.status_code == 201, response.content
    timer = TimedRole.objects.get()
    assert (timer.guild_id, timer.member_id, timer.role_id, timer.warn_channel_id) == (GUILD, MEMBER, ROLE, CHANNEL)
    remaining = timer.expires_at - timezone.now()
    assert timedelta(hours=35, minutes=59) < remaining <= timedelta(hours=36)
    data = response.json()
    assert (data["id"], data["member_id"], data["state"]) == (timer.pk, str(MEMBER), "active")
    assert data["remaining"] in ("1d 11h 59m", "1d 12h")
    assert _queued() == [_sync_of(timer.pk)]


def test_it_replaces_a_live_timer_on_create(api, django_capture_on_commit_callbacks):
    timer = _set()
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, URL, {"guild_id": GUILD, "member_id": MEMBER, "role_id": ROLE, "duration": "30m"})
    assert response.status_code == 200
    assert response.json()["id"] == timer.pk
    assert _queued() == [_sync_of(timer.pk)]


@pytest.mark.parametrize(
    "duration, words", [("0m", "at least 1 minute"), ("400d", "at most 365 days"), ("soon", "can't read"), ("5 parsecs", "unit")]
)
def test_it_answers_400_for_a_bad_duration(api, duration, words):
    response = post(api, URL, {"guild_id": GUILD, "member_id": MEMBER, "role_id": ROLE, "duration": duration})
    assert response.status_code == 400
    assert words in response.json()["detail"]
    assert not TimedRole.objects.exists() and not OrmQ.objects.exists()


def test_it_answers_400_for_a_role_that_is_not_allowed(api):
    allowed_role_add(guild_id=GUILD, role_id=OTHER_ROLE, actor_id=None)
    response = post(api, URL, {"guild_id": GUILD, "member_id": MEMBER, "role_id": ROLE, "duration": "1h"})
    assert response.status_code == 400
    assert "list of timed roles" in response.json()["detail"]


def test_it_answers_422_for_ids_that_are_not_discord_ids(api):
    for bad in ({"member_id": "x"}, {"role_id": 0}, {"guild_id": "1" * 25}, {"duration": ""}):
        body = {"guild_id": GUILD, "member_id": MEMBER, "role_id": ROLE, "duration": "1h", **bad}
        assert post(api, URL, body).status_code == 422


def test_it_extends_a_timer(api, django_capture_on_commit_callbacks):
    timer = _set(hours=2)
    before = timer.expires_at
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, f"{URL}/{timer.pk}/extend", {"duration": 90})
    assert response.status_code == 200, response.content
    timer.refresh_from_db()
    assert timer.expires_at - before == timedelta(minutes=90)
    assert list(TimerEvent.objects.filter(timer=timer).values_list("kind", flat=True).order_by("pk")) == ["set", "add"]
    assert _queued() == [_sync_of(timer.pk)]


def test_it_pauses_and_resumes_a_timer(api, django_capture_on_commit_callbacks):
    timer = _set(hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        paused = post(api, f"{URL}/{timer.pk}/pause", {"duration": "1h"})
    assert paused.status_code == 200, paused.content
    assert paused.json()["state"] == "paused" and paused.json()["pause_until"] is not None
    assert 7100 < paused.json()["paused_remaining"] <= 7200
    assert post(api, f"{URL}/{timer.pk}/pause", {}).status_code == 400  # already paused
    with django_capture_on_commit_callbacks(execute=True):
        resumed = post(api, f"{URL}/{timer.pk}/resume")
    assert resumed.status_code == 200
    assert resumed.json()["state"] == "active" and resumed.json()["paused_remaining"] is None
    assert post(api, f"{URL}/{timer.pk}/resume").json() == {"detail": "That timer isn't paused."}
    assert _queued() == [_sync_of(timer.pk), _sync_of(timer.pk)]


def test_it_clears_a_timer_and_queues_the_role_removal(api, django_capture_on_commit_callbacks):
    timer = _set()
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, f"{URL}/{timer.pk}/clear")
    assert response.status_code == 200
    assert response.json()["state"] == "cleared" and response.json()["remaining"] is None
    assert TimedRole.objects.get(pk=timer.pk).state == TimerState.CLEARED
    assert _queued() == [_sync_of(timer.pk)]
    ended = post(api, f"{URL}/{timer.pk}/extend", {"duration": "1h"})
    assert ended.status_code == 409 and "has ended" in ended.json()["detail"]
    assert len(_queued()) == 1


def test_it_answers_404_for_a_missing_timer(api):
    for action in ("extend", "pause", "resume", "clear"):
        response = post(api, f"{URL}/999999/{action}", {"duration": "1h"})
        assert response.status_code == 404, action
        assert response.json() == {"detail": "There is no timer #999999."}
    assert api.get(f"{URL}/999999").status_code == 404
    assert api.get(f"{URL}/{2**64}").status_code == 422
    assert not OrmQ.objects.exists()


def test_it_gets_one_timer(api):
    timer = _set()
    assert api.get(f"{URL}/{timer.pk}").json()["role_id"] == str(ROLE)


def test_it_lists_timers_newest_first_with_filters(api):
    first = _set(member=MEMBER, role=ROLE)
    second = _set(member=OTHER_MEMBER, role=ROLE)
    third = _set(member=MEMBER, role=OTHER_ROLE)
    _set(member=MEMBER, role=ROLE, guild=OTHER_GUILD)
    post(api, f"{URL}/{third.pk}/pause")

    def ids(**params):
        return [row["id"] for row in api.get(URL, {"guild_id": GUILD, **params}).json()["items"]]

    assert ids() == [third.pk, second.pk, first.pk]
    assert ids(member_id=str(MEMBER)) == [third.pk, first.pk]
    assert ids(role_id=ROLE) == [second.pk, first.pk]
    assert ids(state="paused") == [third.pk]
    assert ids(member_id=MEMBER, role_id=ROLE, state="active") == [first.pk]
    assert api.get(URL, {"state": "asleep"}).status_code == 422


def test_it_pages_through_timers(api):
    TimedRole.objects.bulk_create(
        TimedRole(guild_id=GUILD, member_id=m, role_id=ROLE, expires_at=timezone.now() + timedelta(hours=1))
        for m in range(1, 121)
    )
    expected = list(TimedRole.objects.order_by("-pk").values_list("pk", flat=True))
    seen, cursor = [], None
    while True:
        body = api.get(URL, {"guild_id": GUILD, "limit": 50, **({"cursor": cursor} if cursor else {})}).json()
        seen += [row["id"] for row in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


@pytest.mark.parametrize("duration, minutes", [(90, 90), (90.0, 90), ("90", 90)])
def test_it_reads_a_bare_number_as_minutes(api, duration, minutes):
    timer = _set(hours=2)
    before = timer.expires_at
    response = post(api, f"{URL}/{timer.pk}/extend", {"duration": duration})
    assert response.status_code == 200, response.content
    timer.refresh_from_db()
    assert timer.expires_at - before == timedelta(minutes=minutes)


@pytest.mark.parametrize("duration", [True, 1.5, "1h\x00"])
def test_it_refuses_a_duration_that_is_neither_text_nor_whole_minutes(api, duration):
    timer = _set(hours=2)
    response = post(api, f"{URL}/{timer.pk}/extend", {"duration": duration})
    assert response.status_code == 422
    assert TimedRole.objects.get().expires_at == timer.expires_at
