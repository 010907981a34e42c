"""Engines and migrations: SQLite (WAL) for the embedded default, PostgreSQL at scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

__all__ = ["create_engine", "is_up_to_date", "migrate"]


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url``; for SQLite, the file's folder is created and WAL switched on."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    # Batch executemany INSERTs into multi-row VALUES statements (psycopg would send one per row).
    engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


def _sqlite_engine(url: str) -> sa.Engine:
    database = sa.engine.make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy manage transactions, and take the write lock at BEGIN (no upgrade deadlocks).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _alembic_config(connection: sa.Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "interlink.store:migrations")
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision (creating it on a new database)."""
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")


def is_up_to_date(engine: sa.Engine) -> bool:
    """Whether the database is at the newest migration."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
        head = ScriptDirectory.from_config(_alembic_config(connection)).get_heads()
        return set(current) == set(head)
