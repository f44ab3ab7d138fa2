"""Persistence: SQLAlchemy Core tables, alembic migrations, SQLite by default, PostgreSQL for scale."""
