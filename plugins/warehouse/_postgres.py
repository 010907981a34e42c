"""PostgreSQL through psycopg: ``SELECT 1`` as the check, an upsert per event, keyset pages of a source table.

* **Connecting.** One connection per call (``connect_timeout`` 10 s, ``statement_timeout`` 60 s). A refused
  password, an unknown host or database is a :class:`PermanentError` naming ``dsn``; a refused or timed-out
  connection, a server shutting down or out of connections is a :class:`TransientError`.
* **Deliver.** ``INSERT ... ON CONFLICT (id) DO UPDATE`` into ``schema.table`` (``id`` = the idempotency key,
  ``type``, ``occurred_at``, ``data`` JSONB, ``loaded_at``), so a retried event overwrites its own row. A missing
  table is created on first use (the statement is :data:`CREATE_TABLE`; without the CREATE privilege the error
  says to run it by hand). A batch is one transaction; when one event in it is refused, the events are loaded
  one by one so only that one fails.
* **Sync.** ``SELECT * FROM sourceTable WHERE (cursor, key) > (last cursor, last key) ORDER BY cursor, key
  LIMIT n``: keyset pages, a checkpoint after each (``{"cursor": ..., "key": ...}``, JSON values that
  PostgreSQL reads back as the column's type), memory bounded by one page. An index on ``(cursor, key)`` makes
  each page one index range scan. Rows whose cursor is NULL are never read. As with any high-water mark, a
  row committed late with a cursor value below one already read is missed: use a cursor the database sets at
  commit order (e.g. a sequence) when that matters.

psycopg is the optional extra ``interlink[postgres]``, imported on first use.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from interlink.connector import CheckResult, ConnectorContext, ConnectorError, PermanentError, TransientError
from interlink.envelope import iso_time
from interlink.secrets import MASK

from ._common import DEFAULT_TABLE, event_row, identifier, row_envelope, source_columns

if TYPE_CHECKING:
    import psycopg

__all__ = ["CREATE_TABLE", "PAGE_ROWS", "check", "deliver_batch", "sync"]

PAGE_ROWS = 500
"""Rows per sync page (one query each)."""
CONNECT_TIMEOUT = 10
STATEMENT_TIMEOUT_MS = 60_000
CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, type text NOT NULL, occurred_at timestamptz, "
    "data jsonb NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now())"
)
_UPSERT = (
    "INSERT INTO {table} (id, type, occurred_at, data) VALUES (%s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
    "type = EXCLUDED.type, occurred_at = EXCLUDED.occurred_at, data = EXCLUDED.data, loaded_at = now()"
)
_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
"""SQLSTATE classes worth a retry: connection, rollback (deadlock, serialization), resources, shutdown, system."""
_PERMANENT_CONNECT = (
    "failed to resolve host",
    "could not translate host name",
    "authentication failed",
    "no password supplied",
    "no pg_hba.conf entry",
    "does not exist",
    "invalid",
    "missing",
)
"""What libpq says (psycopg gives no SQLSTATE for a failed connect) when retrying cannot help."""


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise PermanentError(
            "the PostgreSQL driver is not installed: install interlink[postgres] (psycopg) on the workers",
            setting="kind",
        ) from None
    return psycopg


def check(ctx: ConnectorContext) -> CheckResult:
    """Connect and run ``SELECT 1``."""
    with _connect(ctx, autocommit=True) as conn, _classified(ctx):
        conn.execute("SELECT 1").fetchone()
    return CheckResult(ok=True, message="connected; SELECT 1 answered")


def deliver_batch(ctx: ConnectorContext, batch: Sequence[tuple[Mapping[str, Any], str]]) -> list[Exception | None]:
    """Upsert every event; one outcome per event, in order (see the module's docstring)."""
    rows = [event_row(event, key) for event, key in batch]
    try:
        with _connect(ctx, autocommit=False) as conn:
            table = _events_table(ctx)
            try:
                _upsert(ctx, conn, table, rows)
                return [None] * len(rows)
            except TransientError:
                raise
            except PermanentError as exc:
                if len(rows) == 1 or exc.setting:
                    return [exc] * len(rows)
            outcomes: list[Exception | None] = []
            for row in rows:  # find the one refused: each in its own transaction
                try:
                    _upsert(ctx, conn, table, [row])
                    outcomes.append(None)
                except PermanentError as exc:
                    outcomes.append(exc)
            return outcomes
    except ConnectorError as exc:
        return [exc] * len(rows)


def sync(ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
    """Yield one ``warehouse.row`` envelope per source row past the saved cursor, a checkpoint per page."""
    columns = source_columns(ctx)
    if columns is None:
        return
    _psycopg()  # a clear error when the driver is missing
    from psycopg import sql
    from psycopg.rows import dict_row

    table, cursor_column, key_column = columns
    source = _qualified(ctx, table)
    order = sql.SQL("ORDER BY {c}, {k} LIMIT %s").format(c=sql.Identifier(cursor_column), k=sql.Identifier(key_column))
    first = sql.SQL("SELECT * FROM {t} WHERE {c} IS NOT NULL ").format(t=source, c=sql.Identifier(cursor_column))
    after = sql.SQL("SELECT * FROM {t} WHERE ({c}, {k}) > (%s, %s) ").format(
        t=source, c=sql.Identifier(cursor_column), k=sql.Identifier(key_column)
    )
    state = dict(ctx.state)
    with _connect(ctx, autocommit=True) as conn:
        while True:
            resume = "cursor" in state and "key" in state
            query, params = (
                (after + order, [state["cursor"], state["key"], PAGE_ROWS])
                if resume
                else (
                    first + order,
                    [PAGE_ROWS],
                )
            )
            with _classified(ctx, source_table=True), conn.cursor(row_factory=dict_row) as cur:
                cur.execute(query, params)
                rows = cur.fetchall()
            for row in rows:
                values = {name: json_value(value) for name, value in row.items()}
                if cursor_column not in values or key_column not in values:
                    missing = "cursorColumn" if cursor_column not in values else "primaryKey"
                    raise PermanentError(f"{table} has no column named so — update settings.{missing}", setting=missing)
                yield row_envelope(table, values, cursor_column, key_column)
                state = {"cursor": values[cursor_column], "key": values[key_column]}
            if rows or not resume:
                yield {"checkpoint": dict(state)}
            if len(rows) < PAGE_ROWS:
                return


def json_value(value: Any) -> Any:
    """A PostgreSQL value as JSON that PostgreSQL reads back as the same value (so it can be a cursor).

    Times are ISO 8601 (aware ones in UTC, ``Z``), numerics and UUIDs strings (exact), bytes hex.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime):
        return iso_time(value) if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID | dt.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return str(value)


# -- connections and errors -----------------------------------------------------------------------


def _dsn(ctx: ConnectorContext) -> str:
    dsn = str(ctx.settings.get("dsn") or "").strip()
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if dsn.startswith(prefix):
            dsn = "postgresql://" + dsn[len(prefix) :]
    if not dsn.startswith("postgresql://"):
        raise PermanentError(
            "the connection URL is not a postgresql://user:password@host:5432/database URL — update settings.dsn",
            setting="dsn",
        )
    return dsn


@contextlib.contextmanager
def _connect(ctx: ConnectorContext, *, autocommit: bool) -> Iterator[psycopg.Connection[Any]]:
    psycopg = _psycopg()
    dsn = _dsn(ctx)
    try:
        conn = psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT, autocommit=True, application_name="interlink")
    except psycopg.Error as exc:
        raise _connect_error(ctx, exc) from None
    try:
        with _classified(ctx):
            conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        conn.autocommit = autocommit
        yield conn
    finally:
        conn.close()


def _connect_error(ctx: ConnectorContext, exc: Exception) -> ConnectorError:
    state = getattr(exc, "sqlstate", None) or ""
    detail = _first_line(ctx, exc)
    if state.startswith(_TRANSIENT_CLASSES) or (
        not state and not any(part in detail.lower() for part in _PERMANENT_CONNECT)
    ):
        return TransientError(f"could not reach PostgreSQL: {detail}")
    return PermanentError(f"PostgreSQL refused the connection: {detail} — update settings.dsn", setting="dsn")


@contextlib.contextmanager
def _classified(ctx: ConnectorContext, *, source_table: bool = False) -> Iterator[None]:
    """Turn psycopg errors raised inside into the typed errors, naming the setting at fault when one is."""
    psycopg = _psycopg()
    try:
        yield
    except psycopg.Error as exc:
        state = getattr(exc, "sqlstate", None) or ""
        detail = _first_line(ctx, exc)
        if state.startswith(_TRANSIENT_CLASSES) or (not state and isinstance(exc, psycopg.OperationalError)):
            raise TransientError(f"PostgreSQL failed: {detail}") from None
        setting = {"3F000": "schema", "42501": "dsn"}.get(state)
        if state == "42P01":
            setting = "sourceTable" if source_table else "table"
        elif state == "42703" and source_table:
            setting = "cursorColumn"
        hint = f" — update settings.{setting}" if setting else ""
        raise PermanentError(
            f"PostgreSQL refused the statement ({state or 'error'}): {detail}{hint}", setting=setting
        ) from None


def _first_line(ctx: ConnectorContext, exc: Exception) -> str:
    """The error's first line, with the connection URL and its password masked (libpq may echo them)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    dsn = str(ctx.settings.get("dsn") or "")
    secrets = [dsn]
    with contextlib.suppress(Exception):
        from psycopg.conninfo import conninfo_to_dict

        password = conninfo_to_dict(_dsn(ctx)).get("password")
        if password:
            secrets.append(str(password))
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text[:300]


# -- the events table -----------------------------------------------------------------------------


def _qualified(ctx: ConnectorContext, table: str) -> Any:
    from psycopg import sql

    schema = identifier(ctx, "schema")
    return sql.Identifier(schema, table) if schema else sql.Identifier(table)


def _events_table(ctx: ConnectorContext) -> Any:
    table = identifier(ctx, "table", DEFAULT_TABLE)
    assert table is not None
    return _qualified(ctx, table)


def _upsert(ctx: ConnectorContext, conn: psycopg.Connection[Any], table: Any, rows: list[dict[str, Any]]) -> None:
    psycopg = _psycopg()
    from psycopg import sql
    from psycopg.types.json import Jsonb

    statement = sql.SQL(_UPSERT).format(table=table)
    params = [(r["id"], r["type"], r["occurred_at"], Jsonb(r["data"])) for r in rows]
    for attempt in (1, 2):
        try:
            with _classified(ctx), conn.transaction(), conn.cursor() as cur:
                cur.executemany(statement, params)
            return
        except PermanentError as exc:
            if attempt == 2 or exc.setting != "table":
                raise
        except psycopg.Error as exc:  # pragma: no cover - _classified converts every psycopg error
            raise PermanentError(_first_line(ctx, exc)) from None
        _create_table(ctx, conn, table)


def _create_table(ctx: ConnectorContext, conn: psycopg.Connection[Any], table: Any) -> None:
    from psycopg import sql

    statement = sql.SQL(CREATE_TABLE).format(table=table)
    try:
        with _classified(ctx), conn.transaction():
            conn.execute(statement)
    except PermanentError as exc:
        raise PermanentError(
            f"the events table is missing and could not be created ({exc.message}); create it with: "
            f"{statement.as_string(conn)} — or update settings.table",
            setting="table",
        ) from None
    ctx.logger.info("warehouse: created the events table %s", statement.as_string(conn).split(" (")[0])
