"""Database health: PgHero-style checks on PostgreSQL, file checks on SQLite, daily snapshots."""
