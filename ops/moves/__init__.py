"""Moving the whole database between SQLite and PostgreSQL (``manage.py move_database``)."""

from ops.moves.errors import MoveRefused
from ops.moves.move import MoveReport, TableResult, database_move
