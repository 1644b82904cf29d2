"""Admin titles, breadcrumbs, messages and delete confirmations name objects from the directory."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from commands.models import CommandAlias, CommandCooldown, CookieBalance, CookieLedger, CookieRole, GuildSettings
from commands.services import command_alias_add, command_create, cookie_give, guild_settings_update
from guilds.models import LogSettings
from guilds.services.directory import ChannelSeen, DirectoryBatch, GuildSeen, MemberSeen, RoleSeen, directory_record
from timers.models import AllowedRole, BulkJob, RoleReport, TimedRole, TimerEvent, TimerReconcile, TimerSettings
from timers.services import timer_clear, timer_set

pytestmark = pytest.mark.django_db
G1, UNKNOWN = 111_111_111_111_111_111, 333_333_333_333_333_333
ALICE, STRANGER = 1039, 1041
BOOSTER, GENERAL = 777, 55
ACTION = "admin:commands_guildsettings_changelist"


@pytest.fixture
def world():
    directory_record(
        batch=DirectoryBatch(
            guilds=[GuildSeen(G1, "My Server")],
            roles=[RoleSeen(G1, BOOSTER, "Booster")],
            channels=[ChannelSeen(G1, GENERAL, "general")],
            members=[MemberSeen(G1, ALICE, "alice", "Alice")],
        )
    )
    command = command_create(guild_id=G1, name="hello", template="Hi!", author_id=ALICE)
    command_alias_add(guild_id=G1, name="hello", alias="hi")
    until = timezone.now() + timedelta(minutes=5)
    for scope, scope_id in (("member", ALICE), ("member", STRANGER), ("channel", GENERAL)):
        CommandCooldown.objects.create(command=command, scope=scope, scope_id=scope_id, until=until)
    return command


@pytest.fixture
def staff(client, world):
    client.force_login(User.objects.create_user("staff", password="pw-staff-123", is_staff=True, is_superuser=True))
    return client


def page(client, name: str, *args) -> str:
    response = client.get(reverse(name, args=args))
    assert response.status_code == 200
    return response.content.decode()


def test_it_names_a_command_in_its_title_breadcrumb_history_and_delete_page(staff, world):
    change = staff.get(reverse("admin:commands_customcommand_change", args=[world.pk]))
    assert change.context["subtitle"] == "hello (My Server)"
    assert '<div class="breadcrumbs">' in (html := change.content.decode()) and "hello (My Server)\n</div>" in html
    assert "hi → hello" in html  # the alias inline
    assert "Change history: hello (My Server)" in page(staff, "admin:commands_customcommand_history", world.pk)
    delete = page(staff, "admin:commands_customcommand_delete", world.pk)
    assert "hello (My Server)" in delete and "hi → hello" in delete
    assert "hello, for Alice (@alice) until" in delete and "hello, for #general until" in delete
    assert f"hello, for member {STRANGER} until" in delete  # not in the directory: the id
    assert str(G1) not in delete and str(ALICE) not in delete


def test_it_falls_back_to_the_id_for_a_guild_the_directory_does_not_know(staff):
    settings = guild_settings_update(guild_id=UNKNOWN, prefix="?")
    change = staff.get(reverse("admin:commands_guildsettings_change", args=[settings.pk]))
    assert change.context["subtitle"] == f"guild {UNKNOWN}"


def test_it_names_the_saved_object_in_the_message_and_the_log(staff):
    settings = guild_settings_update(guild_id=G1, prefix="?")
    url = reverse("admin:commands_guildsettings_change", args=[settings.pk])
    form = staff.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "thanks_words"}
    data.update(prefix="$", thanks_words="[]", command_refusal="reply")
    response = staff.post(url, {k: ("on" if v is True else v) for k, v in data.items() if v is not False}, follow=True)
    said = [str(m) for m in response.context["messages"]]
    assert any(">My Server</a>” was changed successfully" in m for m in said), said
    assert LogEntry.objects.get(object_id=str(settings.pk)).object_repr == "My Server"


def test_it_names_a_new_cookie_role_in_the_added_message(staff):
    response = staff.post(
        reverse("admin:commands_cookierole_add"), {"guild_id": G1, "threshold": 100, "role_id": BOOSTER}, follow=True
    )
    said = " ".join(str(m) for m in response.context["messages"])
    assert ">@Booster from 100 cookies (My Server)</a>” was added successfully" in said
    assert CookieRole.objects.filter(guild_id=G1, role_id=BOOSTER).exists()


def test_a_timer_and_its_events_are_named(staff):
    timer = timer_set(guild_id=G1, member_id=ALICE, role_id=BOOSTER, duration=timedelta(hours=1), actor_id=None).timer
    change = staff.get(reverse("admin:timers_timedrole_change", args=[timer.pk]))
    assert change.context["subtitle"] == "@Booster for Alice (@alice) in My Server (active)"
    event = TimerEvent.objects.filter(timer=timer).first()
    assert event is not None
    shown = staff.get(reverse("admin:timers_timerevent_change", args=[event.pk])).context["subtitle"]
    assert shown == "set: @Booster for Alice (@alice) in My Server (active)"


def test_a_timer_action_names_the_timers_it_refuses(staff):
    timer = timer_set(guild_id=G1, member_id=ALICE, role_id=BOOSTER, duration=timedelta(hours=1), actor_id=None).timer
    timer_clear(guild_id=G1, member_id=ALICE, role_id=BOOSTER, actor_id=None)
    response = staff.post(
        reverse("admin:timers_timedrole_changelist"), {"action": "pause_timers", "_selected_action": [timer.pk]}, follow=True
    )
    said = " ".join(str(m) for m in response.context["messages"])
    assert "@Booster for Alice (@alice) in My Server (cleared): that timer has already ended." in said


def _bulk_delete_confirmation(client, pks) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.post(reverse(ACTION), {"action": "delete_selected", "_selected_action": pks})
    assert response.status_code == 200
    return response.content.decode(), sum(1 for q in captured.captured_queries if "guilds_" in q["sql"])


def test_the_bulk_delete_confirmation_names_every_row_in_one_directory_query(staff):
    pks = [guild_settings_update(guild_id=G1, prefix="?").pk]
    for n in range(3):
        pks.append(guild_settings_update(guild_id=UNKNOWN + n, prefix="?").pk)
    few, few_queries = _bulk_delete_confirmation(staff, pks)
    assert "Guild settings: <a" in few and ">My Server</a>" in few and f">guild {UNKNOWN}</a>" in few
    for n in range(3, 40):
        pks.append(guild_settings_update(guild_id=UNKNOWN + n, prefix="?").pk)
    many, many_queries = _bulk_delete_confirmation(staff, pks)
    assert f">guild {UNKNOWN + 39}</a>" in many
    assert few_queries == many_queries == 2  # the list's names, then the confirmation's
    done = staff.post(reverse(ACTION), {"action": "delete_selected", "_selected_action": pks, "post": "yes"}, follow=True)
    assert done.status_code == 200 and not GuildSettings.objects.exists()
    assert "My Server" in LogEntry.objects.values_list("object_repr", flat=True)


def test_a_delete_confirmation_of_many_related_rows_costs_the_same_queries(staff, world):
    def confirmation() -> tuple[str, int]:
        with CaptureQueriesContext(connection) as captured:
            html = page(staff, "admin:commands_customcommand_delete", world.pk)
        return html, len(captured.captured_queries)

    _, few = confirmation()
    until = timezone.now() + timedelta(minutes=5)
    members = [MemberSeen(G1, 5000 + n, f"user{n}") for n in range(60)]
    directory_record(batch=DirectoryBatch(members=members))
    CommandCooldown.objects.bulk_create(
        CommandCooldown(command=world, scope="member", scope_id=5000 + n, until=until) for n in range(60)
    )
    html, many = confirmation()
    assert "hello, for user59 (@user59) until" in html
    assert many == few


def test_an_alias_is_named_by_its_command_without_a_query(staff, world, django_assert_num_queries):
    alias = CommandAlias.objects.get(name="hi")
    with django_assert_num_queries(0):
        assert str(alias) == f"hi → command #{world.pk}"  # its command not loaded: the number, not a query
    assert str(CommandAlias.objects.select_related("command").get(name="hi")) == "hi → hello"
    listed = page(staff, "admin:commands_commandalias_changelist")
    assert 'field-command_name">hello<' in listed and "My Server" in listed
    assert staff.get(reverse("admin:commands_commandalias_change", args=[alias.pk])).context["subtitle"] == "hi → hello"


def test_str_never_queries_and_says_ids_without_the_directory(world, django_assert_num_queries):
    cookie_give(guild_id=G1, giver_id=STRANGER, receiver_id=ALICE)
    balance = CookieBalance.objects.get(guild_id=G1, member_id=ALICE)
    timer = timer_set(guild_id=G1, member_id=ALICE, role_id=BOOSTER, duration=timedelta(hours=1), actor_id=None).timer
    with django_assert_num_queries(0):
        assert str(balance) == f"member {ALICE} in guild {G1}: 1 cookie"
        assert str(timer) == f"role {BOOSTER} for member {ALICE} in guild {G1} (active)"
        assert str(world) == f"hello (guild {G1})"


def test_staff_without_the_permissions_see_no_titles_and_delete_nothing(client, world):
    user = User.objects.create_user("helper", password="pw-helper-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_customcommand"))
    client.force_login(user)
    assert client.get(reverse("admin:commands_customcommand_change", args=[world.pk])).context["subtitle"] == "hello (My Server)"
    assert client.get(reverse("admin:commands_customcommand_delete", args=[world.pk])).status_code == 403
    assert client.post(reverse("admin:commands_customcommand_delete", args=[world.pk]), {"post": "yes"}).status_code == 403
    timer = TimedRole.objects.create(guild_id=G1, member_id=ALICE, role_id=BOOSTER, state="expired")
    assert client.get(reverse("admin:timers_timedrole_change", args=[timer.pk])).status_code == 403
    settings = guild_settings_update(guild_id=G1, prefix="?")
    assert client.get(reverse("admin:commands_guildsettings_history", args=[settings.pk])).status_code == 403
    denied = client.post(reverse(ACTION), {"action": "delete_selected", "_selected_action": [settings.pk]})
    assert denied.status_code == 403 and GuildSettings.objects.filter(pk=settings.pk).exists()


def test_a_list_names_what_its_rows_show_as_text_in_its_one_directory_query(staff):
    for member in (ALICE, STRANGER):
        timer_set(guild_id=G1, member_id=member, role_id=BOOSTER, duration=timedelta(hours=1), actor_id=None)
    with CaptureQueriesContext(connection) as captured:
        listed = page(staff, "admin:timers_timerevent_changelist")
    assert "@Booster for Alice (@alice) in My Server (active)" in listed
    assert f"@Booster for member {STRANGER} in My Server (active)" in listed
    assert sum(1 for q in captured.captured_queries if "guilds_" in q["sql"]) == 1


def _ledger_row() -> CookieLedger:
    cookie_give(guild_id=G1, giver_id=STRANGER, receiver_id=ALICE)
    return CookieLedger.objects.get()


@pytest.mark.parametrize(
    ("make", "title"),
    [
        (
            lambda: BulkJob.objects.create(guild_id=G1, kind="add", role_id=BOOSTER, seconds=60),
            "bulk add of @Booster in My Server (waiting)",
        ),
        (lambda: TimerReconcile.objects.create(guild_id=G1), "My Server"),
        (lambda: TimerSettings.objects.create(guild_id=G1), "My Server"),
        (lambda: AllowedRole.objects.create(guild_id=G1, role_id=BOOSTER), "@Booster (My Server)"),
        (
            lambda: RoleReport.objects.create(guild_id=G1, role_id=BOOSTER, channel_id=GENERAL, next_run_at=timezone.now()),
            "report of @Booster to #general",
        ),
        (lambda: LogSettings.objects.create(guild_id=G1, channel_id=GENERAL), "My Server → #general"),
        (lambda: CookieRole.objects.create(guild_id=G1, role_id=BOOSTER, threshold=1), "@Booster from 1 cookie (My Server)"),
        (lambda: _ledger_row(), f"member {STRANGER} → Alice (@alice): +1"),
    ],
)
def test_every_guild_scoped_change_page_is_titled_by_name(staff, make, title):
    obj = make()
    info = (obj._meta.app_label, obj._meta.model_name)
    subtitle = staff.get(reverse("admin:%s_%s_change" % info, args=[obj.pk])).context["subtitle"]
    assert subtitle == title
