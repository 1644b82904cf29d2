"""guild_export and guild_import at size, and retention's batches: rows/s and peak memory.

    GUILDHALL_DATA_DIR=$(mktemp -d) .venv/bin/python bench/guild_bundle.py [--ledger 200000] [--timers 50000]

Runs on a scratch database (migrated here): one guild with ``--members`` balances, a ledger
of ``--ledger`` rows, ``--timers`` ended timers with two events each; exports it, imports it
as another guild, and prints rows/s and the process's peak RSS after each step (the peak
should not grow with the row counts); then a retention run over the lot, with its longest
delete transaction.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import _setup  # noqa: F401  (Django set-up)
from django.core.management import call_command
from django.utils import timezone

from commands.models import CookieBalance, CookieLedger
from ops.bundles import guild_export_file, guild_import_file
from ops.retention import Cutoffs, retention_run
from timers.models import TimedRole, TimerEvent

GUILD, OTHER = 1, 2


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill(members: int, ledger: int, timers: int) -> None:
    old = timezone.now() - timedelta(days=500)
    per = ledger // members
    CookieBalance.objects.bulk_create(
        (CookieBalance(guild_id=GUILD, member_id=m, balance=per) for m in range(1, members + 1)), batch_size=5000
    )
    CookieLedger.objects.bulk_create(
        (
            CookieLedger(
                guild_id=GUILD,
                giver_id=0,
                receiver_id=i % members + 1,
                delta=1,
                reason="give",
                created_at=old + timedelta(seconds=i),
            )
            for i in range(per * members)
        ),
        batch_size=5000,
    )
    rows = TimedRole.objects.bulk_create(
        (
            TimedRole(guild_id=GUILD, member_id=i, role_id=7, state="expired", ended_at=old, outcome="removed")
            for i in range(timers)
        ),
        batch_size=5000,
    )
    TimerEvent.objects.bulk_create((TimerEvent(timer_id=t.pk, kind=k) for t in rows for k in ("set", "expire")), batch_size=5000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=10000)
    parser.add_argument("--ledger", type=int, default=200000)
    parser.add_argument("--timers", type=int, default=50000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    fill(args.members, args.ledger, args.timers)
    print(f"filled: peak RSS {peak_mb():.0f} MB")
    path = Path(tempfile.mkdtemp()) / "guild.jsonl.gz"
    started = time.perf_counter()
    counts = guild_export_file(guild_id=GUILD, path=path)
    rows, seconds = sum(counts.values()), time.perf_counter() - started
    print(
        f"export: {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s), {path.stat().st_size / 1e6:.1f} MB, peak RSS {peak_mb():.0f} MB"
    )
    started = time.perf_counter()
    summary = guild_import_file(path=path, as_guild=OTHER)
    seconds = time.perf_counter() - started
    print(
        f"import: {summary.imported:,} rows in {seconds:.1f} s ({summary.imported / seconds:,.0f} rows/s), peak RSS {peak_mb():.0f} MB"
    )
    now = timezone.now()
    started = time.perf_counter()
    run = retention_run(now=now, cutoffs=Cutoffs(timers=now - timedelta(days=365), ledger=now - timedelta(days=30)))
    seconds = time.perf_counter() - started
    print(
        f"retention: {run.timers_archived:,} timers, {run.events_archived:,} events, {run.ledger_rows_folded:,} ledger rows "
        f"in {seconds:.1f} s; longest delete transaction {run.longest_batch_ms:.1f} ms; peak RSS {peak_mb():.0f} MB; {run.error or 'ok'}"
    )


if __name__ == "__main__":
    main()
