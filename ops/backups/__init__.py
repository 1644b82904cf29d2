"""Backups: create, list, verify, restore, retention and drills (django-dbbackup underneath)."""
