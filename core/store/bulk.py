"""Bulk inserts: PostgreSQL's ``COPY`` where it is there, an ``executemany`` elsewhere.

Why: a multi-row ``INSERT`` of fifty log rows makes psycopg re-parse a query with hundreds of
placeholders on every batch, which cost the delivery worker more CPU than the deliveries themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["insert_rows"]


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by column name, every row the same keys) in the current transaction."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), list(rows))
        return
    names = list(rows[0])
    columns = [table.c[name] for name in names]
    json_columns = {c.name for c in columns if isinstance(c.type, sa.JSON) or "JSON" in type(c.type).__name__}
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [json.dumps(row[n]) if n in json_columns and row[n] is not None else row[n] for n in names]
                )
    except conn.dialect.dbapi.IntegrityError as exc:  # type: ignore[union-attr]
        raise sa.exc.IntegrityError(statement, None, exc) from exc
