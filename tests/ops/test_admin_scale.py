"""The admin of the big tables costs O(page): no full COUNT(*), indexed search only, timer actions via services."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from commands.models import CommandAlias, CookieBalance, CookieLedger, CustomCommand
from commands.services import command_alias_add, command_create, cookie_give
from config.admin_paging import EstimatedCountPaginator
from timers.models import TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.services import timer_pause, timer_set

GUILD = 555
OTHER = 556
BIG_TABLES = {
    CustomCommand: "commands_customcommand",
    CommandAlias: "commands_commandalias",
    CookieBalance: "commands_cookiebalance",
    CookieLedger: "commands_cookieledger",
    TimedRole: "timers_timedrole",
    TimerEvent: "timers_timerevent",
}


@pytest.fixture
def filled(db):
    command_create(guild_id=GUILD, name="hello", template="Hi {user}!", author_id=1)
    command_create(guild_id=GUILD, name="help-me", template="ok", author_id=1)
    command_create(guild_id=OTHER, name="hello", template="elsewhere", author_id=1)
    command_alias_add(guild_id=GUILD, name="hello", alias="hi")
    for receiver in (2, 3, 4):
        cookie_give(guild_id=GUILD, giver_id=1, receiver_id=receiver)
    cookie_give(guild_id=OTHER, giver_id=1, receiver_id=2)
    timer_set(guild_id=GUILD, member_id=2, role_id=7, duration=timedelta(hours=2), actor_id=1)
    timer_set(guild_id=GUILD, member_id=3, role_id=7, duration=timedelta(hours=3), actor_id=1)
    timer_set(guild_id=OTHER, member_id=2, role_id=7, duration=timedelta(hours=2), actor_id=1)


@pytest.fixture
def staff(client, filled):
    client.force_login(User.objects.create_user("staff", password="pw-staff-123", is_staff=True, is_superuser=True))
    return client


def _changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _unbounded_counts(queries, table: str) -> list[str]:
    return [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and table in q["sql"] and "LIMIT" not in q["sql"].upper()]


def _timer(member_id: int, guild_id: int = GUILD) -> TimedRole:
    return TimedRole.objects.get(guild_id=guild_id, member_id=member_id, role_id=7)


@pytest.mark.parametrize("model", list(BIG_TABLES), ids=lambda m: m.__name__)
@pytest.mark.parametrize("search", ["", str(GUILD)])
def test_it_lists_a_big_table_without_an_unbounded_count(staff, model, search):
    query = {"q": search} if search else {}
    if model is TimerEvent and search:
        query = {"q": str(_timer(2).pk)}
    with CaptureQueriesContext(connection) as captured:
        response = staff.get(_changelist(model), query)
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1
    assert _unbounded_counts(captured.captured_queries, BIG_TABLES[model]) == []


def test_it_caps_a_count_and_keeps_later_pages_reachable(filled):
    for receiver in range(10, 18):
        cookie_give(guild_id=GUILD, giver_id=5, receiver_id=receiver)
    rows = CookieLedger.objects.filter(guild_id=GUILD).order_by("-pk")
    paginator = EstimatedCountPaginator(rows, per_page=2)
    paginator.cap = 5
    assert paginator.count == 6 and paginator.count_is_exact is False
    last = paginator.page(6)  # past the capped count: 11 rows make six pages
    assert len(last.object_list) == 1


def test_it_counts_a_small_result_exactly(filled):
    paginator = EstimatedCountPaginator(CookieBalance.objects.filter(guild_id=GUILD).order_by("pk"), per_page=2)
    assert paginator.count == 3 and paginator.count_is_exact is True
    assert paginator.num_pages == 2


@pytest.mark.postgres
def test_it_estimates_an_unfiltered_count_from_table_statistics(filled):
    CookieLedger.objects.bulk_create(
        CookieLedger(guild_id=GUILD, giver_id=9, receiver_id=i, delta=1, reason="give", created_at=timezone.now())
        for i in range(40)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE commands_cookieledger")
    paginator = EstimatedCountPaginator(CookieLedger.objects.order_by("-pk"), per_page=10)
    paginator.cap = 20
    with CaptureQueriesContext(connection) as captured:
        count = paginator.count
    assert count == CookieLedger.objects.count() and paginator.count_is_exact is False
    assert [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()] == []
    assert any("reltuples" in q["sql"] for q in captured.captured_queries)


@pytest.mark.parametrize(
    ("model", "search", "expected"),
    [
        (CustomCommand, f"{GUILD} he", {"hello", "help-me"}),
        (CustomCommand, f"{GUILD} name:help", {"help-me"}),
        (CommandAlias, f"{GUILD} h", {"hi"}),
        (CookieBalance, f"{GUILD} member:3", {3}),
        (CookieLedger, f"{GUILD} receiver:4", {4}),
        (CookieLedger, f"giver:1 {OTHER}", {2}),
        (TimedRole, f"{GUILD} role:7 state:active", {2, 3}),
        (TimedRole, f"{GUILD} member:3", {3}),
    ],
)
def test_it_finds_rows_by_indexed_terms(staff, model, search, expected):
    response = staff.get(_changelist(model), {"q": search})
    assert response.status_code == 200
    found = set()
    for row in response.context["cl"].result_list:
        found.add(getattr(row, "name", None) or getattr(row, "member_id", None) or getattr(row, "receiver_id", None))
    assert found == expected


def test_it_finds_a_timers_events_by_its_id(staff):
    timer = _timer(2)
    response = staff.get(_changelist(TimerEvent), {"q": str(timer.pk)})
    assert {event.timer_id for event in response.context["cl"].result_list} == {timer.pk}


@pytest.mark.parametrize(
    ("model", "search", "says"),
    [
        (CookieBalance, "member:3", "Add the guild id"),
        (CustomCommand, "hello", "Add the guild id"),
        (CookieLedger, f"{GUILD} reason:give", "not something this list can search by"),
        (TimedRole, f"{GUILD} state:sleeping", "state must be one of"),
        # Not numbers: names, looked up in the directory first (none known here).
        (CookieBalance, f"{GUILD} member:abc", "No member whose name starts with “abc”"),
        (CookieBalance, "hello", "No guild whose name starts with “hello”"),
        (CookieBalance, '"My Server', "A quote is not closed"),
    ],
)
def test_it_refuses_a_search_that_would_read_the_whole_table(staff, model, search, says):
    response = staff.get(_changelist(model), {"q": search})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert says in " ".join(str(m) for m in response.context["messages"])


def test_it_lists_a_guilds_balances_in_leaderboard_order(staff):
    cookie_give(guild_id=GUILD, giver_id=6, receiver_id=4)
    response = staff.get(_changelist(CookieBalance), {"q": str(GUILD)})
    members = [row.member_id for row in response.context["cl"].result_list]
    assert members == [4, 2, 3]


def test_it_offers_export_links_for_the_searched_guild(staff):
    response = staff.get(_changelist(CookieLedger), {"q": str(GUILD)})
    page = response.content.decode()
    assert reverse("exports:download", args=["cookie-ledger", "csv"]) + f"?guild={GUILD}" in page
    assert reverse("exports:download", args=["cookie-ledger", "jsonl"]) + f"?guild={GUILD}" in page


def test_it_shows_ids_without_dropdowns(staff):
    event = TimerEvent.objects.first()
    response = staff.get(reverse("admin:timers_timerevent_change", args=[event.pk]))
    assert response.status_code == 200
    assert "<select" not in response.content.decode()


# --- timer actions -----------------------------------------------------------------
def _act(client, action: str, timers, **extra):
    data = {"action": action, "_selected_action": [t.pk for t in timers], "index": 0, **extra}
    return client.post(_changelist(TimedRole), data)


def _queued() -> list[tuple]:
    return [(row.task["func"], tuple(row.task["args"])) for row in OrmQ.objects.order_by("pk")]


def _messages(response) -> str:
    return " ".join(str(m) for m in response.wsgi_request._messages)


def test_it_pauses_and_resumes_through_the_services_and_queues_the_sync(staff, django_capture_on_commit_callbacks):
    timer = _timer(2)
    with django_capture_on_commit_callbacks(execute=True):
        response = _act(staff, "pause_timers", [timer])
    assert response.status_code == 302
    timer.refresh_from_db()
    assert timer.state == TimerState.PAUSED and timer.paused_remaining > timedelta(hours=1)
    assert _queued() == [("bots.tasks.timer_role_apply", (timer.pk,))]
    with django_capture_on_commit_callbacks(execute=True):
        _act(staff, "resume_timers", [timer])
    timer.refresh_from_db()
    assert timer.state == TimerState.ACTIVE
    kinds = list(timer.events.order_by("pk").values_list("kind", flat=True))
    assert kinds == [TimerEventKind.SET, TimerEventKind.PAUSE, TimerEventKind.RESUME]
    assert len(_queued()) == 2


def test_it_extends_by_a_typed_duration_after_an_intermediate_form(staff, django_capture_on_commit_callbacks):
    timer = _timer(2)
    before = timer.expires_at
    form = _act(staff, "extend_timers", [timer])
    assert form.status_code == 200 and 'name="duration"' in form.content.decode()
    assert "csrfmiddlewaretoken" in form.content.decode()
    bad = _act(staff, "extend_timers", [timer], apply="Extend", duration="soon")
    assert bad.status_code == 200 and "as a duration" in bad.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = _act(staff, "extend_timers", [timer], apply="Extend", duration="1d 2h")
    assert done.status_code == 302
    timer.refresh_from_db()
    assert timer.expires_at - before == timedelta(days=1, hours=2)
    assert timer.events.filter(kind=TimerEventKind.ADD, seconds=26 * 3600).exists()
    assert _queued() == [("bots.tasks.timer_role_apply", (timer.pk,))]


def test_it_clears_a_timer_and_keeps_the_row_as_history(staff, django_capture_on_commit_callbacks):
    timer = _timer(3)
    with django_capture_on_commit_callbacks(execute=True):
        _act(staff, "clear_timers", [timer])
    timer.refresh_from_db()
    assert timer.state == TimerState.CLEARED and timer.ended_at is not None
    assert _queued() == [("bots.tasks.timer_role_apply", (timer.pk,))]


def test_it_shows_a_services_refusal_and_queues_nothing(staff, django_capture_on_commit_callbacks):
    running, paused = _timer(2), _timer(3)
    timer_pause(guild_id=GUILD, member_id=3, role_id=7, actor_id=1)
    with django_capture_on_commit_callbacks(execute=True):
        response = _act(staff, "resume_timers", [running, paused])
    assert "isn't paused" in _messages(response)
    assert _queued() == [("bots.tasks.timer_role_apply", (paused.pk,))]
    timer_set(guild_id=GUILD, member_id=4, role_id=7, duration=timedelta(hours=1), actor_id=1)
    ended = _timer(4)
    TimedRole.objects.filter(pk=ended.pk).update(state=TimerState.EXPIRED)
    response = _act(staff, "pause_timers", [ended])
    assert "already ended" in _messages(response)
    assert _timer(4).state == TimerState.EXPIRED


def test_it_keeps_timer_rows_read_only(staff):
    timer = _timer(2)
    url = reverse("admin:timers_timedrole_change", args=[timer.pk])
    page = staff.get(url).content.decode()
    assert not re.search(r'name="_save"', page)
    staff.post(url, {"state": "cleared", "member_id": 99})
    timer.refresh_from_db()
    assert (timer.state, timer.member_id) == (TimerState.ACTIVE, 2)
    assert staff.get(reverse("admin:timers_timedrole_delete", args=[timer.pk])).status_code == 403
