"""Restore drills on a schedule: registered daily, run when BACKUP_DRILL_DAYS have passed, every result
kept (failures with their reason), and a point-in-time recovery drill when an engine is configured
(the real Litestream, on an installation of its own; pgBackRest on a cluster of its own), and the
newest off-site copy when backups are kept in S3 (moto's server over HTTP)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.models import Schedule

from ops.backups.drill import configured_pitr_engine, drill_due, drill_scheduled
from ops.backups.errors import BackupFailed
from ops.backups.services import backup_create
from ops.models import DrillResult
from tests.ops.test_pitr_litestream import _product, _sync, installation
from tests.s3server import s3_backups, s3_server, s3_storage

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_registers_the_daily_drill_and_the_minutely_alerts():
    call_command("setup_schedules", stdout=StringIO())
    drill = Schedule.objects.get(name="guildhall.ops.backup_drill")
    alerts = Schedule.objects.get(name="guildhall.ops.alerts")
    assert (drill.func, drill.minutes) == ("ops.backups.drill.drill_scheduled", 1440)
    assert (alerts.func, alerts.minutes) == ("ops.alerts.tasks.alerts_evaluate_scheduled", 1)


def test_it_drills_when_due_and_keeps_each_result(backup_dir, settings):
    settings.BACKUP_DRILL_DAYS = 7
    backup = backup_create(kind="scheduled")
    assert drill_due()
    summary = drill_scheduled()
    assert summary == f"local backup {backup.name}: passed"
    result = DrillResult.objects.get()
    assert (result.passed, result.source, result.backup, result.error) == (True, "local", backup.name, "")
    assert result.tables_compared == len(backup.tables) and result.rows_compared == sum(backup.tables.values())
    assert result.rows_compared > 0 and result.duration_seconds > 0 and result.mismatches == []

    assert drill_scheduled().startswith("not due") and DrillResult.objects.count() == 1
    DrillResult.objects.update(started_at=timezone.now() - timedelta(days=7, minutes=1))
    assert drill_scheduled().endswith("passed") and DrillResult.objects.count() == 2


def test_it_drills_the_newest_off_site_copy_when_backups_are_kept_in_s3(s3_backups, settings):
    backup = backup_create(kind="scheduled")
    assert backup.name in s3_backups.names()
    assert not (Path(settings.BACKUP_DIR) / backup.name).exists()  # only the remote copy exists
    assert drill_scheduled() == f"off-site copy {backup.name}: passed"
    result = DrillResult.objects.get()
    assert (result.source, result.passed, result.backup) == ("offsite", True, backup.name) and result.rows_compared > 0


def test_it_keeps_a_failed_drill_with_its_reason(backup_dir):
    with pytest.raises(BackupFailed, match="There is no backup to drill yet"):
        drill_scheduled()
    result = DrillResult.objects.get()
    assert not result.passed and result.error == "There is no backup to drill yet: make one first."


def test_manage_py_backup_drill_keeps_its_result_too(backup_dir):
    with pytest.raises(CommandError, match="no backup to drill"):
        call_command("backup_drill", stdout=StringIO())
    backup_create(kind="manual")
    out = StringIO()
    call_command("backup_drill", stdout=out)
    assert "drill passed" in out.getvalue()
    assert list(DrillResult.objects.order_by("started_at").values_list("passed", flat=True)) == [False, True]


def test_it_skips_point_in_time_recovery_when_no_engine_is_configured(settings):
    settings.LITESTREAM_REPLICA_URL = ""
    settings.PITR_PGBACKREST_STANZA = ""
    assert configured_pitr_engine() is None


def test_it_drills_a_point_in_time_recovery_with_litestream(installation):
    env, data = installation["env"], installation["data"]
    _product(env, "from ops.backups.services import backup_create\nbackup_create(kind='manual')\n")
    _sync(data)
    out = _product(
        env,
        "from ops.backups.drill import drill_scheduled\nfrom ops.models import DrillResult\n"
        "out['summary'] = drill_scheduled(force=True)\n"
        "out['rows'] = list(DrillResult.objects.order_by('started_at').values_list("
        "'source', 'passed', 'tables_compared', 'rows_compared', 'backup', 'error'))\n",
    )
    (local, pitr) = out["rows"]
    assert local[:2] == ["local", True]
    assert pitr[0:2] == ["pitr", True] and pitr[5] == "", pitr
    assert pitr[2] > 0 and pitr[3] > 0  # passed: every live table came back (with its rows)
    assert pitr[4].startswith("litestream at ")
    assert "point-in-time recovery" in out["summary"] and "FAILED" not in out["summary"]


@pytest.mark.postgres
def test_it_drills_a_point_in_time_recovery_with_pgbackrest():
    from tests.ops.test_pitr_pgbackrest import _archive_now, _new_cluster, _run, _stop_all

    cluster = _new_cluster("alertsdrill")
    try:
        cluster.sql("CREATE DATABASE guildhall")
        cluster.manage("migrate", "-v0", timeout=300)
        cluster.manage("pitr_backup", "--type", "full", timeout=300)
        # The latest restorable moment a whole second past the backup's stop (pgBackRest keeps whole seconds).
        time.sleep(1.5)
        cluster.sql("CREATE TABLE written_after_the_backup AS SELECT 1 AS n", dbname="guildhall")
        _archive_now(cluster)
        code = (
            "import json\nfrom ops.backups.services import backup_create\nfrom ops.backups.drill import drill_scheduled\n"
            "from ops.models import DrillResult\nbackup_create(kind='manual')\ndrill_scheduled(force=True)\n"
            "print('OUT ' + json.dumps(list(DrillResult.objects.order_by('started_at').values_list("
            "'source', 'passed', 'tables_compared', 'rows_compared', 'backup', 'error'))))"
        )
        env = cluster.env(BACKUP_DIR=str(cluster.base / "backups"))  # the drill's backup stays in the test's directory
        done = _run([sys.executable, "manage.py", "shell", "-c", code], env=env, timeout=300)
        (line,) = [line for line in done.stdout.splitlines() if line.startswith("OUT ")]
        local, pitr = json.loads(line[4:])
        assert local[:2] == ["local", True]
        assert pitr[:2] == ["pitr", True] and pitr[5] == "", pitr
        assert pitr[2] > 0 and pitr[4].startswith("pgbackrest at ")
        # The drill stopped its scratch cluster and removed it.
        assert not list(Path(tempfile.gettempdir()).glob("guildhall-pitr-drill-*"))
    finally:
        _stop_all(cluster.base)
