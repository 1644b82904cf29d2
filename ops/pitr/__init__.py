"""Point-in-time recovery: continuous WAL archiving with pgBackRest on PostgreSQL, and
continuous replication of the SQLite file with Litestream on the embedded default.

``ops.pitr.window`` is the shape both engines report; ``ops.pitr.pgbackrest`` and
``ops.pitr.litestream`` are the engines.
"""
