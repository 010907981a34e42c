"""Persistence: SQLAlchemy Core tables, Alembic migrations and the queries, one path for both databases."""

from interlink.store.engine import create_engine, is_up_to_date, migrate

__all__ = ["create_engine", "is_up_to_date", "migrate"]
