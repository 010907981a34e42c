"""A small publish transaction's rows on PostgreSQL in one statement and one round trip.

Why: ``COPY`` is the fastest way in for many rows, but it costs two exchanges with the server per table;
a group of a few single-event publishes then spent more time waiting for those exchanges (each of which
also hands the GIL back and forth with the event loop) than writing. Here both tables and the hourly
counts are written by one multi-row ``INSERT`` (the others through data-modifying ``WITH`` clauses). Its
text depends only on the row counts, so the few texts a busy server sees are prepared once (psycopg
prepares a query run five times); the values go through psycopg's C dumpers (arrays of values would be
dumped in Python, ~3x slower). The text uses PostgreSQL's own ``$n`` placeholders and goes through a
``RawCursor``: psycopg caches its conversion of ``%s`` only for statements of up to 50 parameters, and
converting this one on every group cost the writer a quarter of its CPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import count
from typing import Any

import psycopg
import sqlalchemy as sa

from interlink.stats import bucket_counts
from interlink.store.tables import event_counts, events, published_events

__all__ = ["insert_published"]

_COUNT_NAMES = ("integration_id", "hour", "tenant_id", "count")
_statements: dict[tuple[tuple[str, ...], int, tuple[str, ...], int, int], str] = {}


def _insert(table: sa.Table, names: Sequence[str], rows: int, numbers: count[int]) -> str:
    values = ", ".join("(" + ", ".join(f"${next(numbers)}" for _ in names) + ")" for _ in range(rows))
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES {values}"  # noqa: S608


def _statement(
    payload_names: tuple[str, ...], payloads: int, event_names: tuple[str, ...], rows: int, buckets: int
) -> str:
    """The payloads alone, or the payloads and the deliveries (in ``WITH``) then their buckets' counts."""
    numbers = count(1)
    insert_payloads = _insert(published_events, payload_names, payloads, numbers)
    if not rows:
        return insert_payloads
    insert_deliveries = _insert(events, event_names, rows, numbers)
    return (
        f"WITH payloads AS ({insert_payloads}), deliveries AS ({insert_deliveries}) "
        f"{_insert(event_counts, _COUNT_NAMES, buckets, numbers)}"
        " ON CONFLICT (integration_id, hour) DO UPDATE SET count = event_counts.count + excluded.count"
    )


def insert_published(
    conn: sa.Connection, payload_rows: Sequence[Mapping[str, Any]], event_rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``published_events`` rows, the ``events`` rows that reference them and their hourly counts."""
    if not payload_rows:
        return
    buckets = bucket_counts(event_rows)
    payload_names = tuple(payload_rows[0])
    event_names = tuple(event_rows[0]) if event_rows else ()
    key = (payload_names, len(payload_rows), event_names, len(event_rows), len(buckets))
    statement = _statements.get(key)
    if statement is None:
        statement = _statement(payload_names, len(payload_rows), event_names, len(event_rows), len(buckets))
        if len(_statements) < 1000:
            _statements[key] = statement
    params = [row[n] for row in payload_rows for n in payload_names]
    params += [row[n] for row in event_rows for n in event_names]
    params += [value for bucket in buckets for value in bucket]
    dbapi_connection: Any = conn.connection.dbapi_connection
    try:
        with psycopg.RawCursor(dbapi_connection) as cursor:
            cursor.execute(statement, params)
    except psycopg.Error as exc:  # as SQLAlchemy would raise it (IntegrityError on a duplicate external id)
        raise sa.exc.DBAPIError.instance(statement, None, exc, psycopg.Error, hide_parameters=True) from exc
