"""The directory's and the activity log's admin pages (one module each)."""

from guilds import admin_directory, admin_log  # noqa: F401  (registers the models)
