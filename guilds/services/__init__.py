"""Writes for the directory (``directory.py``) and the activity log (``log.py``)."""
