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
from interlink.store.bulk import shared_columns
from interlink.store.tables import event_counts, events, published_events

__all__ = ["insert_published"]

_COUNT_NAMES = ("integration_id", "hour", "tenant_id", "count")
_Shape = tuple[tuple[str, ...], tuple[bool, ...], int]
"""A table's part of the statement: its columns, which of them one value serves for every row, its row count."""
_statements: dict[tuple[_Shape, _Shape, int, int], str] = {}
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]

Guard = tuple[str, list[str], str]
"""``(tenant_id, event types, fingerprint)``: the fan-out the rows were built from (see ``fanout.GUARD``)."""


def _shape(rows: Sequence[Mapping[str, Any]]) -> _Shape:
    """The columns, and those whose value is the same in every row (the group's time, its statuses...)."""
    names = tuple(rows[0]) if rows else ()
    shared = shared_columns(rows, names)
    return names, tuple(name in shared for name in names), len(rows)


def _values(rows: Sequence[Mapping[str, Any]], shape: _Shape) -> list[Any]:
    """``rows``' parameters in :func:`_insert`'s order: the shared values once, then each row's others."""
    names, shared, _ = shape
    once = [n for n, same in zip(names, shared, strict=True) if same]
    each = [n for n, same in zip(names, shared, strict=True) if not same]
    values = [rows[0][n] for n in once]
    values += [row[n] for row in rows for n in each]
    return values


def _insert(table: sa.Table, shape: _Shape, numbers: count[int], guarded: bool) -> str:
    """``INSERT ... SELECT`` from a typed ``VALUES`` list, a value shared by every row bound once.

    A ``SELECT``, so that a stale fan-out inserts nothing; typed, as a bare ``VALUES`` list is not. Binding
    the group's time, statuses and empty columns once (not once a row) keeps the statement's parameters
    to a third, which psycopg dumps and PostgreSQL parses one by one.
    """
    names, shared, rows = shape
    types = {name: table.c[name].type.compile(dialect=_DIALECT) for name in names}
    select = {n: f"${next(numbers)}::{types[n]}" for n, same in zip(names, shared, strict=True) if same}
    each = [n for n in names if n not in select]  # never empty: rows all alike share nothing
    values = ", ".join("(" + ", ".join(f"${next(numbers)}::{types[n]}" for n in each) + ")" for _ in range(rows))
    columns = ", ".join(select.get(n, f"v.{n}") for n in names)
    where = " WHERE (SELECT fresh FROM guard)" if guarded else ""
    return (
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {columns}"  # noqa: S608
        f" FROM (VALUES {values}) AS v ({', '.join(each)}){where}"
    )


def _statement(payloads: _Shape, deliveries: _Shape, buckets: int, guards: int) -> str:
    """The payloads, the deliveries and their buckets' counts; behind the fan-out guards if there are any."""
    numbers = count(1)
    parts = []
    if guards:
        checks = " AND ".join(
            GUARD.format(tenant=f"${next(numbers)}", types=f"${next(numbers)}", fingerprint=f"${next(numbers)}")
            for _ in range(guards)
        )
        parts.append(f"guard AS (SELECT {checks} AS fresh)")
    insert_payloads = _insert(published_events, payloads, numbers, bool(guards))
    if not deliveries[2] and not guards:
        return insert_payloads
    parts.append(f"payloads AS ({insert_payloads})")
    if deliveries[2]:
        parts.append(f"deliveries AS ({_insert(events, deliveries, numbers, bool(guards))})")
        counts_shape = (_COUNT_NAMES, (False,) * len(_COUNT_NAMES), buckets)
        counts = (
            _insert(event_counts, counts_shape, numbers, bool(guards))
            + " ON CONFLICT (integration_id, hour) DO UPDATE SET count = event_counts.count + excluded.count"
        )
        if not guards:
            return f"WITH {', '.join(parts)} {counts}"
        parts.append(f"counts AS ({counts})")
    return f"WITH {', '.join(parts)} SELECT fresh FROM guard"  # noqa: S608


def published_statement(
    payload_rows: Sequence[Mapping[str, Any]],
    event_rows: Sequence[Mapping[str, Any]],
    guards: Sequence[Guard] = (),
) -> tuple[str, list[Any]]:
    """The one statement (``$n`` placeholders) that :func:`insert_published` runs, and its parameters."""
    buckets = bucket_counts(event_rows)
    payloads, deliveries = _shape(payload_rows), _shape(event_rows)
    key = (payloads, deliveries, len(buckets), len(guards))
    statement = _statements.get(key)
    if statement is None:
        statement = _statement(*key)
        if len(_statements) < 1000:
            _statements[key] = statement
    params: list[Any] = [value for guard in guards for value in guard]
    params += _values(payload_rows, payloads)
    params += _values(event_rows, deliveries)
    params += [value for bucket in buckets for value in bucket]
    return statement, params


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
    statement, params = published_statement(payload_rows, event_rows, guards)
    dbapi_connection: Any = conn.connection.dbapi_connection
    try:
        with psycopg.RawCursor(dbapi_connection) as cursor:
            cursor.execute(statement, params)
            fresh = cursor.fetchone() if guards else (True,)
    except psycopg.Error as exc:  # as SQLAlchemy would raise it (IntegrityError on a duplicate external id)
        raise sa.exc.DBAPIError.instance(statement, None, exc, psycopg.Error, hide_parameters=True) from exc
    return bool(fresh and fresh[0])
