"""Bulk inserts: PostgreSQL's ``COPY``, SQLite's multi-row ``INSERT ... VALUES``.

Why: a multi-row ``INSERT`` of fifty log rows makes psycopg re-parse a query with hundreds of
placeholders on every batch, which cost the delivery worker more CPU than the deliveries themselves.
On SQLite, SQLAlchemy's ``executemany`` runs a bind processor per value (every ``UTCDateTime`` of every
row), which cost a sync more than the inserts themselves; here each distinct value is converted once,
with SQLAlchemy's own processors. And the rows go in as one statement of many rows, not as
``executemany``: ``sqlite3`` lets go of the GIL for every step, and a statement per row meant a GIL
hand-off per row with the sync's reading thread (a quarter more records a second with one statement).
A value every row shares (a batch's time, tenant, statuses, empty columns) is bound once, the statement
selecting it beside the other columns of a ``VALUES`` list: binding is most of what ``sqlite3`` does for a
wide row.
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from interlink.jsontext import dump_json
from interlink.store.tables import UTCDateTime

__all__ = ["insert_rows", "shared_columns"]

_Processor = Callable[[Any], Any]
_Key = TypeVar("_Key", bound=Hashable)
_Compiled = tuple[str, tuple[str, ...], list[_Processor | None]]
_statements: dict[tuple[str, str, tuple[str, ...]], _Compiled | None] = {}


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by column name, every row the same keys) in the current transaction."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, table, rows)
    elif conn.dialect.name == "sqlite" and _compiled(conn.dialect, table, tuple(rows[0])) is not None:
        _insert_values(conn, table, rows)
    else:
        conn.execute(table.insert(), list(rows))


def _copy(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    names = list(rows[0])
    columns = [table.c[name] for name in names]
    json_columns = {c.name for c in columns if isinstance(c.type, sa.JSON) or "JSON" in type(c.type).__name__}
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [dump_json(row[n]) if n in json_columns and row[n] is not None else row[n] for n in names]
                )
    except conn.dialect.dbapi.IntegrityError as exc:  # type: ignore[union-attr]
        raise sa.exc.IntegrityError(statement, None, exc) from exc


def _insert_values(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    compiled = _compiled(conn.dialect, table, tuple(rows[0]))
    assert compiled is not None
    statement, names, processors = compiled
    # Found on the given values: equal values of one type convert to the same bound value, and a row's
    # work is then only its own columns (three of an inbound event's seventeen).
    shared = shared_columns(rows, names)
    once = [_bound(processors[i], rows[0][name]) for i, name in enumerate(names) if name in shared]
    each = [i for i, name in enumerate(names) if name not in shared]
    values_of = operator.itemgetter(*[names[i] for i in each])
    # per own column with a processor: its position, the processor, and the values it has converted so far
    own_processors = [processors[i] for i in each]
    converting: list[tuple[int, _Processor, dict[Any, Any]]] = [
        (j, process, {}) for j, process in enumerate(own_processors) if process is not None
    ]
    row_values: list[Any] = []
    for row in rows:
        values = list(values_of(row)) if len(each) > 1 else [values_of(row)]
        for j, process, seen in converting:
            value = values[j]
            if value is None:
                continue
            try:
                bound = seen[value]
            except KeyError:
                bound = seen[value] = process(value)
            except TypeError:  # unhashable (a JSON column's dict): convert every time
                bound = process(value)
            values[j] = bound
        row_values += values
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    errors: type[Exception] = conn.dialect.loaded_dbapi.Error
    head, _, _ = statement.partition(" VALUES ")
    row_marks = "(" + ", ".join("?" * len(each)) + ")"
    limit = conn.connection.dbapi_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[union-attr]
    per_statement = max(1, (limit - len(once)) // len(each))
    if shared:  # the shared values bound once, the others a row at a time
        picks = iter(range(1, len(each) + 1))
        select = ", ".join("?" if name in shared else f"column{next(picks)}" for name in names)
        head = f"{head} SELECT {select} FROM (VALUES"  # noqa: S608
    width = len(each)
    try:
        for start in range(0, len(rows), per_statement):
            count = min(per_statement, len(rows) - start)
            values_text = ", ".join([row_marks] * count)
            text = f"{head} {values_text})" if shared else f"{head} VALUES {values_text}"
            cursor.execute(text, once + row_values[start * width : (start + count) * width])
    except errors as exc:  # the same exception (IntegrityError, ...) as SQLAlchemy's own executemany raises
        raise sa.exc.DBAPIError.instance(statement, None, exc, errors, hide_parameters=True) from exc
    finally:
        cursor.close()


def _bound(process: _Processor | None, value: Any) -> Any:
    return value if process is None or value is None else process(value)


def shared_columns(rows: Sequence[Any], keys: Iterable[_Key]) -> set[_Key]:
    """The keys whose value is the same in every one of ``rows`` (a batch's time, its tenant, its empty columns).

    Bound once in a statement instead of once a row: binding is most of what a driver does for a wide row
    (a sync's inbound event has seventeen columns, three of them its own). Equal values of different types
    (``True`` and ``1``) are not the same. Fewer than two rows, or rows all alike, share nothing: each row
    stays a row.
    """
    if len(rows) < 2:
        return set()
    first = rows[0]
    keys = list(keys)
    shared = {
        key
        for key in keys
        if all(
            row[key] is first[key] or (type(row[key]) is type(first[key]) and row[key] == first[key]) for row in rows
        )
    }
    return shared if len(shared) < len(keys) else set()


def _compiled(dialect: sa.Dialect, table: sa.Table, names: tuple[str, ...]) -> _Compiled | None:
    """The positional ``INSERT`` of these columns, its parameters' order and their bind processors, made once.

    ``None`` when the statement needs more than the rows give (a column default computed in Python):
    SQLAlchemy's own ``executemany`` does that.
    """
    key = (dialect.name, table.name, names)
    if key not in _statements:
        compiled = table.insert().compile(dialect=dialect, column_keys=list(names))
        order = tuple(compiled.positiontup or ())
        if sorted(order) != sorted(names):
            _statements[key] = None
        else:
            processors: list[_Processor | None] = [_bind_processor(table.c[name], dialect) for name in order]
            _statements[key] = (compiled.string, order, processors)
    return _statements[key]


def _bind_processor(column: sa.Column[Any], dialect: sa.Dialect) -> _Processor | None:
    """The column's bind processor; for a ``UTCDateTime`` on SQLite, the same text made in one step.

    SQLAlchemy's chain (the decorator, then SQLite's ``DATETIME`` formatting) cost a sync more than 5 µs
    for each record's ``occurred_at``; this gives the same text (``YYYY-MM-DD HH:MM:SS.ffffff``) in one.
    """
    if dialect.name == "sqlite" and isinstance(column.type, UTCDateTime):
        return _sqlite_utc_text
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _sqlite_utc_text(value: datetime) -> str:
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
    v = value  # SQLAlchemy's own format for SQLite, without a replace() (its keyword call cost half)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031  (%-formatting is the fastest here)
        v.year,
        v.month,
        v.day,
        v.hour,
        v.minute,
        v.second,
        v.microsecond,
    )
