"""guild_export / guild_import: round trips, refusals, malformed bundles, idempotence, coverage of every guild model."""

from __future__ import annotations

import gzip
import io
import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import models

from commands.models import CookieBalance, CookieLedger, CustomCommand
from commands.services import (
    command_alias_add,
    command_create,
    command_update,
    command_uses_record,
    cookie_give,
    cookie_role_add,
    cookie_set,
    guild_settings_update,
)
from guilds.services.log import log_channel_set
from ops.bundles import KINDS, NOT_EXPORTED, BundleRefused, guild_export, guild_import
from ops.bundles.kinds import FORMAT_VERSION
from tests.conftest import GUILD, OTHER_GUILD
from tests.timers.shortcuts import (
    ACTOR,
    CHANNEL,
    MEMBER,
    NOW,
    OTHER_MEMBER,
    OTHER_ROLE,
    ROLE,
    add_time,
    clear,
    hours,
    pause,
    set_timer,
)
from timers.models import TimedRole, TimerEvent
from timers.services import allowed_role_add, report_set, timer_warnings_set
from timers.services.sweeps import sweep_claim_expiries, sweep_record_expiries

pytestmark = pytest.mark.django_db(transaction=False)
THIRD_GUILD = 100000000000000003


def fill_guild(guild_id: int = GUILD) -> None:
    """A guild with every kind of data, made through the services."""
    guild_settings_update(guild_id=guild_id, prefix="?", cookie_daily_cap=10, cookie_pair_cooldown_seconds=30)
    timer_warnings_set(guild_id=guild_id, minutes=[30, 5])
    command_create(guild_id=guild_id, name="hello", template="Hi {user}! {random: a | b}", author_id=7)
    command_create(guild_id=guild_id, name="rules", template="Read the rules, {user.name}.", author_id=8, cooldown_seconds=60)
    command_update(guild_id=guild_id, name="rules", template="Rules: {args}", cooldown_scope="channel", editor_id=9)
    command_alias_add(guild_id=guild_id, name="hello", alias="hi")
    command_alias_add(guild_id=guild_id, name="rules", alias="r")
    command_uses_record(counts={CustomCommand.objects.get(guild_id=guild_id, name="hello").pk: 5}, at=NOW)
    for giver, receiver in [(11, 22), (12, 22), (11, 33), (22, 11)]:
        cookie_give(guild_id=guild_id, giver_id=giver, receiver_id=receiver, now=NOW - timedelta(hours=giver))
    cookie_give(guild_id=guild_id, giver_id=13, receiver_id=33, delta=-1, now=NOW)
    cookie_set(guild_id=guild_id, member_id=44, balance=100, actor_id=ACTOR)
    cookie_role_add(guild_id=guild_id, threshold=50, role_id=OTHER_ROLE, actor_id=ACTOR)
    allowed_role_add(guild_id=guild_id, role_id=ROLE, actor_id=ACTOR)
    allowed_role_add(guild_id=guild_id, role_id=OTHER_ROLE, actor_id=ACTOR)
    report_set(guild_id=guild_id, role_id=ROLE, channel_id=CHANNEL, interval_minutes=120, actor_id=ACTOR)
    log_channel_set(guild_id=guild_id, channel_id=CHANNEL, actor_id=ACTOR)
    set_timer(hours(2), guild=guild_id, channel_id=CHANNEL)
    add_time(hours(1), guild=guild_id)
    set_timer(hours(3), guild=guild_id, member=OTHER_MEMBER)
    pause(guild=guild_id, member=OTHER_MEMBER, duration=hours(1))
    set_timer(hours(1), guild=guild_id, member=OTHER_MEMBER, role=OTHER_ROLE)
    clear(guild=guild_id, member=OTHER_MEMBER, role=OTHER_ROLE)
    set_timer(timedelta(minutes=5), guild=guild_id, member=55, now=NOW - hours(1))
    claimed = sweep_claim_expiries(owner="test", now=NOW)
    sweep_record_expiries(outcomes=[(t.pk, "removed", "") for t in claimed if t.guild_id == guild_id], owner="test", now=NOW)


def export_text(guild_id: int = GUILD) -> str:
    out = io.StringIO()
    guild_export(guild_id=guild_id, out=out)
    return out.getvalue()


def masked(text: str, *, guild_from: int | None = None, guild_to: int | None = None) -> str:
    """The bundle with the header's time blanked (and, given, one guild id in the header put for another)."""
    lines = text.splitlines(keepends=True)
    header = json.loads(lines[0])
    header["exported_at"] = "-"
    if guild_from is not None and header["guild_id"] == guild_from:
        header["guild_id"] = guild_to
    return json.dumps(header, sort_keys=True) + "\n" + "".join(lines[1:])


def import_text(text: str, **kwargs):
    return guild_import(stream=io.StringIO(text), **kwargs)


def wipe(guild_id: int = GUILD) -> None:
    TimerEvent.objects.filter(timer__guild_id=guild_id).delete()
    for kind in KINDS:
        if "guild_id" in {f.name for f in kind.model._meta.concrete_fields}:
            kind.model._default_manager.filter(guild_id=guild_id).delete()


def test_it_holds_every_kind_with_a_header():
    fill_guild()
    lines = [json.loads(line) for line in export_text().splitlines()]
    header = lines[0]
    assert header["@kind"] == "header" and header["format"] == FORMAT_VERSION and header["product_version"] == "0.9.0"
    assert header["guild_id"] == GUILD and "0001_initial" in header["migrations"]["commands"]
    kinds = [line["@kind"] for line in lines[1:]]
    assert set(kinds) == {kind.name for kind in KINDS}
    assert header["counts"] == {kind.name: kinds.count(kind.name) for kind in KINDS}
    assert all(str(pk) not in {"id"} for line in lines[1:] for pk in line)  # no database ids
    command = next(line for line in lines if line["@kind"] == "command" and line["name"] == "rules")
    assert command["author_id"] == 8 and command["editor_ids"] == [9] and command["cooldown_scope"] == "channel"
    assert next(line for line in lines if line["@kind"] == "command" and line["name"] == "hello")["usage_count"] == 5
    assert {line["name"]: line["command"] for line in lines if line["@kind"] == "alias"} == {"hi": "hello", "r": "rules"}


def test_it_round_trips_byte_for_byte_but_the_header_time():
    fill_guild()
    before = export_text()
    wipe()
    summary = import_text(before)
    assert summary.refused == 0 and summary.imported == sum(json.loads(before.splitlines()[0])["counts"].values())
    assert masked(export_text()) == masked(before)
    assert sum(CookieLedger.objects.filter(guild_id=GUILD, receiver_id=22).values_list("delta", flat=True)) == 2


def test_it_round_trips_into_another_guild_with_as_guild():
    fill_guild()
    before = export_text()
    summary = import_text(before, as_guild=OTHER_GUILD)
    assert summary.refused == 0 and summary.imported > 0
    after = export_text(OTHER_GUILD)
    assert json.loads(after.splitlines()[0])["guild_id"] == OTHER_GUILD
    assert masked(after, guild_from=OTHER_GUILD, guild_to=GUILD) == masked(before)
    # The source guild is untouched and the live timer is a new row of the other guild.
    assert TimedRole.objects.filter(guild_id=OTHER_GUILD).count() == TimedRole.objects.filter(guild_id=GUILD).count()


def test_it_is_idempotent_and_says_so():
    fill_guild()
    text = export_text()
    first = import_text(text, as_guild=OTHER_GUILD)
    rows = {kind.name: kind.model._default_manager.count() for kind in KINDS}
    second = import_text(text, as_guild=OTHER_GUILD)
    assert second.imported == 0 and second.unchanged == first.imported and second.refused == 0
    assert "nothing to do" in second.notes[0]
    assert {kind.name: kind.model._default_manager.count() for kind in KINDS} == rows


def test_it_refuses_a_guild_that_holds_other_data_changing_nothing():
    fill_guild()
    text = export_text()
    cookie_give(guild_id=OTHER_GUILD, giver_id=1, receiver_id=2, now=NOW)
    with pytest.raises(BundleRefused, match="already holds data that is not this bundle's"):
        import_text(text, as_guild=OTHER_GUILD)
    assert CookieLedger.objects.filter(guild_id=OTHER_GUILD).count() == 1
    assert not CustomCommand.objects.filter(guild_id=OTHER_GUILD).exists()


def test_it_refuses_an_earlier_import_changed_since():
    fill_guild()
    text = export_text()
    import_text(text, as_guild=OTHER_GUILD)
    cookie_give(guild_id=OTHER_GUILD, giver_id=77, receiver_id=22, now=NOW + hours(5))
    with pytest.raises(BundleRefused, match="cookies differ: 4 here, 4 in the bundle"):
        import_text(text, as_guild=OTHER_GUILD)


def test_it_refuses_a_newer_format_clearly():
    text = json.dumps({"@kind": "header", "format": FORMAT_VERSION + 1, "product_version": "9.0.0", "guild_id": GUILD}) + "\n"
    with pytest.raises(BundleRefused, match=f"format {FORMAT_VERSION + 1}, made by Guildhall 9.0.0.*Upgrade Guildhall"):
        import_text(text)


@pytest.mark.parametrize(
    ("first_line", "message"),
    [("", "empty"), ("not json", "not JSON"), ('{"@kind": "command"}', "not a bundle header"), ('{"@kind": "header"}', "format")],
)
def test_it_refuses_a_bundle_without_a_good_header(first_line, message):
    with pytest.raises(BundleRefused, match=message):
        import_text(first_line + ("\n" if first_line else ""))


def test_it_reports_bad_lines_by_number_and_takes_the_good_ones():
    fill_guild()
    lines = export_text().splitlines()
    number = {i + 1: json.loads(line) for i, line in enumerate(lines)}
    hello = next(n for n, line in number.items() if line["@kind"] == "command" and line["name"] == "hello")
    hi = next(n for n, line in number.items() if line["@kind"] == "alias" and line["name"] == "hi")
    ledger_22 = next(n for n, line in number.items() if line["@kind"] == "ledger" and line["receiver_id"] == 22)
    first_timer = next(n for n, line in number.items() if line["@kind"] == "timer")
    bad = dict(number)
    bad[hello] = {**number[hello], "template": "{0.__class__}"}
    bad[ledger_22] = {**number[ledger_22], "delta": "one"}
    bad[first_timer] = {**number[first_timer], "state": "frozen"}
    text = "\n".join(json.dumps(bad[n]) for n in sorted(bad)) + "\n{broken\n" + '{"@kind": "dragon"}\n'
    summary = import_text(text, as_guild=OTHER_GUILD)
    reasons = "\n".join(summary.problems)
    assert f"line {hello}: " in reasons and "placeholder" in reasons
    assert f"line {hi}: its command 'hello'" in reasons
    assert f"line {ledger_22}: delta must be a whole number" in reasons
    assert "a member's balance and ledger rows go in together, and line" in reasons
    assert f"line {first_timer}: state:" in reasons and "a timer's events go in only with their timer" in reasons
    assert f"line {len(lines) + 1}: not JSON" in reasons and f"line {len(lines) + 2}: unknown kind 'dragon'" in reasons
    assert not CustomCommand.objects.filter(guild_id=OTHER_GUILD, name="hello").exists()
    assert CustomCommand.objects.filter(guild_id=OTHER_GUILD, name="rules").exists()
    assert not CookieBalance.objects.filter(guild_id=OTHER_GUILD, member_id=22).exists()
    assert not CookieLedger.objects.filter(guild_id=OTHER_GUILD, receiver_id=22).exists()
    assert CookieBalance.objects.get(guild_id=OTHER_GUILD, member_id=44).balance == 100
    assert TimedRole.objects.filter(guild_id=OTHER_GUILD).count() == TimedRole.objects.filter(guild_id=GUILD).count() - 1
    # Every balance that went in equals its ledger sum.
    for row in CookieBalance.objects.filter(guild_id=OTHER_GUILD):
        assert row.balance == sum(
            CookieLedger.objects.filter(guild_id=OTHER_GUILD, receiver_id=row.member_id).values_list("delta", flat=True)
        )
    # The same malformed bundle again: the good rows are unchanged, the bad ones refused again.
    again = import_text(text, as_guild=OTHER_GUILD)
    assert again.imported == 0 and again.unchanged == summary.imported and again.refused == summary.refused


def test_it_refuses_a_balance_that_is_not_its_ledger_sum():
    fill_guild()
    lines = [json.loads(line) for line in export_text().splitlines()]
    for line in lines:
        if line["@kind"] == "balance" and line["member_id"] == 44:
            line["balance"] = 101
    summary = import_text("\n".join(json.dumps(line) for line in lines), as_guild=OTHER_GUILD)
    assert any("balance 101 does not equal the sum of their ledger rows (100)" in p for p in summary.problems)
    assert summary.refused == 2


def test_it_refuses_duplicates_inside_the_bundle():
    fill_guild()
    lines = export_text().splitlines()
    command = next(line for line in lines if '"@kind":"command"' in line)
    timer = next(json.loads(line) for line in lines if '"@kind":"timer"' in line and '"state":"active"' in line)
    text = "\n".join([*lines, command, json.dumps({**timer, "@ref": 999})])
    summary = import_text(text, as_guild=OTHER_GUILD)
    assert summary.refused == 2
    assert any("already taken by an earlier command" in p for p in summary.problems)
    assert any("a second running timer for the same member and role" in p for p in summary.problems)


def test_it_refuses_a_damaged_gzip_changing_nothing(tmp_path):
    fill_guild()
    path = tmp_path / "guild.jsonl.gz"
    call_command("guild_export", guild=GUILD, out=str(path), stdout=io.StringIO())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CommandError, match="damaged"):
        call_command("guild_import", path=str(path), as_guild=OTHER_GUILD, stdout=io.StringIO(), stderr=io.StringIO())
    assert not CustomCommand.objects.filter(guild_id=OTHER_GUILD).exists()


def test_it_works_through_the_commands_with_gzip_and_progress(tmp_path):
    fill_guild()
    path = tmp_path / "guild.jsonl.gz"
    out = io.StringIO()
    call_command("guild_export", guild=GUILD, out=str(path), stdout=out)
    assert "rows/s" in out.getvalue() and json.loads(gzip.open(path, "rt").readline())["guild_id"] == GUILD
    out = io.StringIO()
    call_command("guild_import", path=str(path), as_guild=OTHER_GUILD, stdout=out, stderr=io.StringIO())
    assert "rows/s" in out.getvalue() and ", unchanged 0, refused 0" in out.getvalue()
    out = io.StringIO()
    call_command("guild_import", path=str(path), as_guild=OTHER_GUILD, stdout=out, stderr=io.StringIO())
    assert "imported 0, unchanged" in out.getvalue() and "nothing to do" in out.getvalue()


def test_it_exports_every_guild_with_all(tmp_path):
    fill_guild()
    cookie_give(guild_id=THIRD_GUILD, giver_id=1, receiver_id=2, now=NOW)
    call_command("guild_export", all=True, out=str(tmp_path), stdout=io.StringIO())
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"guild-{GUILD}.jsonl.gz", f"guild-{THIRD_GUILD}.jsonl.gz"]


def _guild_scoped_models() -> set[type[models.Model]]:
    scoped = {m for m in apps.get_models() if "guild_id" in {f.name for f in m._meta.concrete_fields}}
    changed = True
    while changed:  # and every model that hangs off one of them
        more = {
            m
            for m in apps.get_models()
            if any(isinstance(f, models.ForeignKey) and f.related_model in scoped for f in m._meta.concrete_fields)
        }
        changed = bool(more - scoped)
        scoped |= more
    return scoped


def test_it_covers_every_guild_scoped_model():
    covered = {kind.model for kind in KINDS} | set(NOT_EXPORTED)
    missing = sorted(m._meta.label for m in _guild_scoped_models() - covered)
    assert not missing, f"guild-scoped models neither in a bundle kind nor in NOT_EXPORTED: {missing}"


def test_it_covers_every_field_but_the_ones_named():
    for kind in KINDS:
        written = {f.name for f in kind.fields} | set(kind.refs) | {"id", "guild_id"} | set(kind.left_out)
        assert {f.name for f in kind.model._meta.concrete_fields} <= written, kind.name


@pytest.mark.django_db(transaction=True)
def test_it_round_trips_outside_a_test_transaction():
    # The import's own transaction commits for real here (the other tests run inside one).
    fill_guild()
    before = export_text()
    import_text(before, as_guild=OTHER_GUILD)
    assert masked(export_text(OTHER_GUILD), guild_from=OTHER_GUILD, guild_to=GUILD) == masked(before)


def test_it_says_when_the_bundle_holds_fewer_rows_than_its_header_counts():
    fill_guild()
    lines = export_text().splitlines()
    summary = import_text("\n".join(lines[:-2]) + "\n", as_guild=OTHER_GUILD)
    assert summary.refused == 0 and any("the header counts" in note and "timer_event rows" in note for note in summary.notes)


@pytest.mark.django_db(transaction=True)
def test_it_tells_the_bots_to_reload_the_guild():
    from commands.services import commands_version

    fill_guild()
    text = export_text()
    before = commands_version(OTHER_GUILD)
    import_text(text, as_guild=OTHER_GUILD)
    assert commands_version(OTHER_GUILD) != before
