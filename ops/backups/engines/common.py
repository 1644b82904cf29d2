"""What the engine modules share."""


class DumpUnreadable(Exception):
    """A dump that its engine's own tools cannot read (the text says what they said)."""


def quote_table(name: str) -> str:
    """A table name as a quoted SQL identifier (both engines use double quotes)."""
    return '"' + name.replace('"', '""') + '"'


class ToolFailed(RuntimeError):
    """A database client tool (pg_dump, pg_restore, psql) exited with an error; the text has its stderr."""


class ToolMissing(RuntimeError):
    """A database client tool is not installed on this machine."""
