"""Fixtures shared by the operations tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def backup_dir(settings, tmp_path):
    """A private BACKUP_DIR for one test (not created: the code under test makes it)."""
    settings.BACKUP_DIR = tmp_path / "backups"
    return settings.BACKUP_DIR
