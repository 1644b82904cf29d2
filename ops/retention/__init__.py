"""Retention: ended timers and old ledger rows archived under BACKUP_DIR/retention/, then deleted in short batches."""

from ops.retention.archive import archive_dir
from ops.retention.runs import Cutoffs, retention_cutoffs, retention_run
