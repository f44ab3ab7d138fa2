"""Persistence: SQLAlchemy Core tables and alembic migrations; SQLite or PostgreSQL."""
