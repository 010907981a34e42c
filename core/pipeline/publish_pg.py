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
from sqlalchemy.dialects import postgresql

from interlink.pipeline.fanout import GUARD
from interlink.stats import bucket_counts
from interlink.store.tables import event_counts, events, published_events

__all__ = ["insert_published"]

_COUNT_NAMES = ("integration_id", "hour", "tenant_id", "count")
_StatementKey = tuple[tuple[str, ...], int, tuple[str, ...], int, int, int]
_statements: dict[_StatementKey, str] = {}
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]

Guard = tuple[str, list[str], str]
"""``(tenant_id, event types, fingerprint)``: the fan-out the rows were built from (see ``fanout.GUARD``)."""


def _insert(table: sa.Table, names: Sequence[str], rows: int, numbers: count[int], guarded: bool) -> str:
    if not guarded:
        values = ", ".join("(" + ", ".join(f"${next(numbers)}" for _ in names) + ")" for _ in range(rows))
        return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES {values}"  # noqa: S608
    # INSERT ... SELECT, so that a stale fan-out inserts nothing; typed, as a bare VALUES list is not
    types = [table.c[name].type.compile(dialect=_DIALECT) for name in names]
    values = ", ".join("(" + ", ".join(f"${next(numbers)}::{t}" for t in types) + ")" for _ in range(rows))
    return (
        f"INSERT INTO {table.name} ({', '.join(names)}) "  # noqa: S608
        f"SELECT * FROM (VALUES {values}) AS v WHERE (SELECT fresh FROM guard)"
    )


def _statement(key: _StatementKey) -> str:
    """The payloads, the deliveries and their buckets' counts; behind the fan-out guards if there are any."""
    payload_names, payloads, event_names, rows, buckets, guards = key
    numbers = count(1)
    parts = []
    if guards:
        checks = " AND ".join(
            GUARD.format(tenant=f"${next(numbers)}", types=f"${next(numbers)}", fingerprint=f"${next(numbers)}")
            for _ in range(guards)
        )
        parts.append(f"guard AS (SELECT {checks} AS fresh)")
    insert_payloads = _insert(published_events, payload_names, payloads, numbers, bool(guards))
    if not rows and not guards:
        return insert_payloads
    parts.append(f"payloads AS ({insert_payloads})")
    if rows:
        parts.append(f"deliveries AS ({_insert(events, event_names, rows, numbers, bool(guards))})")
        counts = (
            _insert(event_counts, _COUNT_NAMES, buckets, numbers, bool(guards))
            + " ON CONFLICT (integration_id, hour) DO UPDATE SET count = event_counts.count + excluded.count"
        )
        if not guards:
            return f"WITH {', '.join(parts)} {counts}"
        parts.append(f"counts AS ({counts})")
    return f"WITH {', '.join(parts)} SELECT fresh FROM guard"  # noqa: S608


def insert_published(
    conn: sa.Connection,
    payload_rows: Sequence[Mapping[str, Any]],
    event_rows: Sequence[Mapping[str, Any]],
    guards: Sequence[Guard] = (),
) -> bool:
    """Insert ``published_events`` rows, the ``events`` rows that reference them and their hourly counts.

    With ``guards``, only if each tenant's fan-out is still the one the rows were built from; returns
    whether the rows went in.
    """
    if not payload_rows:
        return True
    buckets = bucket_counts(event_rows)
    payload_names = tuple(payload_rows[0])
    event_names = tuple(event_rows[0]) if event_rows else ()
    key = (payload_names, len(payload_rows), event_names, len(event_rows), len(buckets), len(guards))
    statement = _statements.get(key)
    if statement is None:
        statement = _statement(key)
        if len(_statements) < 1000:
            _statements[key] = statement
    params: list[Any] = [value for guard in guards for value in guard]
    params += [row[n] for row in payload_rows for n in payload_names]
    params += [row[n] for row in event_rows for n in event_names]
    params += [value for bucket in buckets for value in bucket]
    dbapi_connection: Any = conn.connection.dbapi_connection
    try:
        with psycopg.RawCursor(dbapi_connection) as cursor:
            cursor.execute(statement, params)
            fresh = cursor.fetchone() if guards else (True,)
    except psycopg.Error as exc:  # as SQLAlchemy would raise it (IntegrityError on a duplicate external id)
        raise sa.exc.DBAPIError.instance(statement, None, exc, psycopg.Error, hide_parameters=True) from exc
    return bool(fresh and fresh[0])
