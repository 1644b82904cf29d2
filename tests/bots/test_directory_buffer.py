"""The bot's directory buffer against the real database: skips what is unchanged, writes in bounded
batches, keeps what a failed write held, and drains everything when asked."""

from __future__ import annotations

import asyncio

import pytest
from django.db import OperationalError

from bots import directory
from bots.directory import DirectoryBuffer
from guilds.models import Member, Role
from guilds.services.directory import MemberLeft, MemberSeen, RoleSeen, directory_record

pytestmark = pytest.mark.django_db(transaction=True)
G = 111_111_111_111_111_111


def seen(user_id: int, nick: str = "") -> MemberSeen:
    return MemberSeen(G, user_id, f"user{user_id}", nick=nick)


def run(coro):
    return asyncio.run(coro)


def test_it_writes_a_member_once_however_often_they_are_seen():
    buffer = DirectoryBuffer()
    for _ in range(50):
        buffer.member_seen(seen(1))
    assert buffer.pending == 1 and run(buffer.flush()) == 1
    for _ in range(50):
        buffer.member_seen(seen(1))  # unchanged since written: not even buffered
    assert buffer.pending == 0 and run(buffer.flush()) == 0
    buffer.member_seen(seen(1, nick="Renamed"))
    assert run(buffer.flush()) == 1 and Member.objects.get(user_id=1).nick == "Renamed"


def test_a_burst_is_written_in_batches_of_flush_rows(monkeypatch):
    monkeypatch.setattr(directory, "FLUSH_ROWS", 10)
    buffer = DirectoryBuffer()
    for user_id in range(1, 36):
        buffer.member_seen(seen(user_id))
    assert run(buffer.flush()) == 30 and buffer.pending == 5 and buffer.flushes == 3  # 5 wait for the timer
    assert run(buffer.flush(everything=True)) == 5 and Member.objects.count() == 35


def test_a_failed_write_keeps_its_rows_under_newer_ones():
    calls = []

    def record(**kwargs):
        calls.append(kwargs["batch"])
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return directory_record(**kwargs)

    buffer = DirectoryBuffer(record=record)
    buffer.member_seen(seen(1, nick="old"))
    buffer.role_seen(RoleSeen(G, 7, "Booster"))
    with pytest.raises(OperationalError):
        run(buffer.flush())
    buffer.member_seen(seen(1, nick="new"))  # arrived while the write failed: newer, kept
    buffer.member_left(MemberLeft(G, 2, "user2"))
    assert run(buffer.flush()) == 3
    assert Member.objects.get(user_id=1).nick == "new" and Member.objects.get(user_id=2).left_at is not None
    assert Role.objects.get(role_id=7).name == "Booster"


def test_a_member_seen_again_after_leaving_is_written_again():
    buffer = DirectoryBuffer()
    buffer.member_seen(seen(1))
    run(buffer.flush())
    buffer.member_left(MemberLeft(G, 1, "user1"))
    run(buffer.flush())
    buffer.member_seen(seen(1))  # same values as first written, but they came back
    assert run(buffer.flush()) == 1 and Member.objects.get(user_id=1).left_at is None
