"""The warehouse connector over real transports: BigQuery against its emulator (real HTTP), PostgreSQL against the
machine's server (a database of its own for this module).

Decisions these tests pin down (see plugins/warehouse):

* the events table is keyed on the idempotency key: a retried event never adds a second row (PostgreSQL upserts,
  BigQuery drops a repeated ``insertId``), and a missing table is created on first delivery;
* a row BigQuery refuses fails alone (``skipInvalidRows``), with BigQuery's message;
* a sync reads ``(cursorColumn, primaryKey)`` keysets, a checkpoint per page, and resumes from any of them with
  no gap; a changed row is a new record (its id carries the cursor value), rows sharing a cursor value are all
  read (the key breaks ties), rows with a NULL cursor are never read.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.connector import ConnectorContext, PermanentError, TransientError
from interlink.http import recording_client
from interlink.plugins.warehouse import WarehouseConnector, _bigquery, _postgres
from interlink.testing.emulators.warehouse import WarehouseEmulator, new_key
from tests.conftest import PG_ADMIN_URL

CONNECTOR = WarehouseConnector()


def context(settings: dict[str, Any], state: dict[str, Any] | None = None) -> ConnectorContext:
    secrets = [str(settings[k]) for k in ("dsn", "serviceAccountJson") if settings.get(k)]
    return ConnectorContext(
        integration_id="int_test",
        settings=settings,
        http=recording_client(secrets=secrets),
        logger=logging.getLogger("interlink.connector.warehouse"),
        state=json.loads(json.dumps(state or {})),
    )


def consume(ctx: ConnectorContext, stop_after: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A sync's records and checkpoint states (JSON round-tripped), stopped after ``stop_after`` checkpoints."""
    records: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    items = CONNECTOR.sync(ctx)
    for item in items:
        if set(item) == {"checkpoint"}:
            states.append(json.loads(json.dumps(item["checkpoint"])))
            if len(states) == stop_after:
                items.close()  # type: ignore[attr-defined]  # a worker killed after this checkpoint
                break
        else:
            records.append(item)
    return records, states


def event(number: int, **data: Any) -> dict[str, Any]:
    return {
        "id": f"evt_{number}",
        "type": "order.created",
        "occurred_at": "2026-01-02T03:04:05Z",
        "data": {"order": number, **data},
    }


# -- BigQuery ---------------------------------------------------------------------------------------


@pytest.fixture
def bigquery() -> Iterator[WarehouseEmulator]:
    with WarehouseEmulator() as emu:
        yield emu


def bq(emu: WarehouseEmulator, **extra: Any) -> dict[str, Any]:
    return {**emu.integration_settings(), **extra}


def test_bigquery_check_reads_the_dataset(bigquery: WarehouseEmulator) -> None:
    assert CONNECTOR.check(context(bq(bigquery))).ok
    assert [r.path for r in bigquery.received] == [
        "/token",
        "/bigquery/v2/projects/emulated-project/datasets/analytics",
    ]


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"serviceAccountJson": "{not json"}, "serviceAccountJson"),
        ({"serviceAccountJson": json.dumps({"client_email": "a@b"})}, "serviceAccountJson"),
        ({"dsn": "bigquery://emulated-project/elsewhere", "schema": None}, "dsn"),
        ({"dsn": "postgresql://x@y/z"}, "dsn"),
        ({"kind": "snowflake"}, "kind"),
    ],
)
def test_bigquery_check_refusals_name_the_setting(
    bigquery: WarehouseEmulator, extra: dict[str, Any], setting: str
) -> None:
    settings = {k: v for k, v in bq(bigquery, **extra).items() if v is not None}
    with pytest.raises(PermanentError) as caught:
        CONNECTOR.check(context(settings))
    assert caught.value.setting == setting
    assert f"settings.{setting}" in caught.value.message


def test_bigquery_a_key_google_does_not_know_is_refused_naming_the_key(bigquery: WarehouseEmulator) -> None:
    other = bigquery.service_account_json(new_key(1))
    with pytest.raises(PermanentError, match="Invalid JWT Signature") as caught:
        CONNECTOR.check(context(bq(bigquery, serviceAccountJson=other)))
    assert caught.value.setting == "serviceAccountJson"
    assert "PRIVATE KEY" not in caught.value.message


def test_bigquery_deliver_creates_the_table_and_a_retry_adds_no_row(bigquery: WarehouseEmulator) -> None:
    ctx = context(bq(bigquery))
    CONNECTOR.deliver(ctx, event(1, amount=1999), "evt_1")
    CONNECTOR.deliver(ctx, event(1, amount=1999), "evt_1")  # the core's retry of the same event
    CONNECTOR.deliver(ctx, event(2), "evt_2")
    rows = bigquery.rows("interlink_events")
    assert [r["id"] for r in rows] == ["evt_1", "evt_2"]
    assert rows[0] == {
        "id": "evt_1",
        "type": "order.created",
        "occurred_at": "2026-01-02T03:04:05Z",
        "data": {"order": 1, "amount": 1999},
    }
    inserts = [r for r in bigquery.received if r.path.endswith("/insertAll")]
    assert [json.loads(r.body)["rows"][0]["insertId"] for r in inserts] == ["evt_1", "evt_1", "evt_1", "evt_2"]
    assert bigquery.grants == 1  # the token is reused across calls


def test_bigquery_deliver_batch_fails_only_the_refused_row(bigquery: WarehouseEmulator) -> None:
    ctx = context(bq(bigquery))
    bad = {**event(2), "occurred_at": "not a time"}
    outcomes = CONNECTOR.deliver_batch(ctx, [(event(1), "evt_1"), (bad, "evt_2"), (event(3), "evt_3")])
    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], PermanentError)
    assert "TIMESTAMP" in outcomes[1].message
    assert [r["id"] for r in bigquery.rows("interlink_events")] == ["evt_1", "evt_3"]
    assert len([r for r in bigquery.received if r.path.endswith("/insertAll")]) == 2  # create, then one insert


@pytest.mark.parametrize(
    ("status", "headers", "kind", "delay"),
    [
        (429, {"Retry-After": "7"}, TransientError, 7.0),
        (503, {}, TransientError, None),
        (400, {}, PermanentError, None),
        (403, {}, PermanentError, None),
    ],
)
def test_bigquery_deliver_classifies_answers(
    bigquery: WarehouseEmulator, status: int, headers: dict[str, str], kind: type[Exception], delay: float | None
) -> None:
    bigquery.fail_next(1, status, headers=headers, when=lambda r: r.path.endswith("/insertAll"))
    with pytest.raises(kind) as caught:
        CONNECTOR.deliver(context(bq(bigquery)), event(1), "evt_1")
    if isinstance(caught.value, TransientError):
        assert caught.value.delay == delay
    if status == 403:
        assert caught.value.setting == "serviceAccountJson"  # type: ignore[attr-defined]


def test_bigquery_a_403_rate_limit_is_transient(bigquery: WarehouseEmulator) -> None:
    body = {"error": {"code": 403, "message": "Exceeded rate limits", "errors": [{"reason": "rateLimitExceeded"}]}}
    bigquery.fail_next(1, 403, body=body, when=lambda r: r.path.startswith("/bigquery/"))
    with pytest.raises(TransientError):
        CONNECTOR.check(context(bq(bigquery)))


def test_bigquery_a_refused_token_is_renewed_once(bigquery: WarehouseEmulator) -> None:
    ctx = context(bq(bigquery))
    CONNECTOR.check(ctx)
    bigquery.expire_tokens()  # revoked, or the key was rotated
    CONNECTOR.check(ctx)
    assert bigquery.grants == 2


def test_bigquery_sync_pages_to_the_end_and_resumes_from_every_checkpoint(bigquery: WarehouseEmulator) -> None:
    bigquery.seed_records(2 * _bigquery.PAGE_ROWS + 7)
    records, states = consume(context(bq(bigquery)))
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == 2 * _bigquery.PAGE_ROWS + 7
    assert len(states) == 3
    first = records[0]
    assert first["type"] == "warehouse.row"
    assert first["occurred_at"] == "2026-01-01T00:00:00Z"
    assert first["data"] == {
        "id": 1,
        "updated_at": "2026-01-01T00:00:00Z",
        "email": "customer1@example.com",
        "amount": 100,
        "currency": "USD",
        "paid": False,
    }
    for number, state in enumerate(states[:-1], 1):
        resumed, _ = consume(context(bq(bigquery), state))
        assert [r["id"] for r in resumed] == ids[number * _bigquery.PAGE_ROWS :]
    again, last = consume(context(bq(bigquery), states[-1]))
    assert again == []
    assert last == [states[-1]]


def test_bigquery_sync_reads_new_and_changed_rows_on_the_next_run(bigquery: WarehouseEmulator) -> None:
    bigquery.seed_records(5)
    _, states = consume(context(bq(bigquery)))
    later = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp() * 1_000_000)
    bigquery.insert("orders", [{"id": 3, "updated_at": later, "amount": 1}, {"id": 9, "updated_at": None}])
    records, _ = consume(context(bq(bigquery), states[-1]))
    assert [r["id"] for r in records] == ["orders:3@2026-02-01T00:00:00Z"]  # the NULL-cursor row is never read


def test_bigquery_sync_waits_for_a_running_query(bigquery: WarehouseEmulator) -> None:
    bigquery.seed_records(3)
    bigquery.pending_polls = 2
    records, _ = consume(context(bq(bigquery)))
    assert len(records) == 3
    assert len([r for r in bigquery.received if r.method == "GET" and "/queries/" in r.path]) == 2


def test_bigquery_sync_faults(bigquery: WarehouseEmulator) -> None:
    bigquery.seed_records(_bigquery.PAGE_ROWS + 1)
    bigquery.fail_next(1, 503, when=lambda r: r.method == "GET" and "/queries/" in r.path)
    with pytest.raises(TransientError):
        consume(context(bq(bigquery)))
    with pytest.raises(PermanentError) as caught:
        consume(context(bq(bigquery, cursorColumn="nope")))
    assert caught.value.setting == "cursorColumn"
    with pytest.raises(PermanentError) as caught:
        consume(context(bq(bigquery, sourceTable="missing")))
    assert caught.value.setting == "sourceTable"
    assert consume(context({k: v for k, v in bq(bigquery).items() if k != "sourceTable"})) == ([], [])


# -- PostgreSQL -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_dsn(pg_admin: sa.Engine) -> Iterator[str]:
    """A database of this module's own, dropped at the end."""
    name = f"interlink_wh_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://") + "/" + name
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def sql(dsn: str, template: str, params: Any = None, *, schema: str = "public") -> list[tuple[Any, ...]]:
    """Run one statement; ``{schema}`` in it is the quoted schema name."""
    import psycopg
    from psycopg import sql as pgsql

    statement = pgsql.SQL(template).format(schema=pgsql.Identifier(schema))  # type: ignore[arg-type]
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else []


def pg(dsn: str, **extra: Any) -> dict[str, Any]:
    schema = extra.pop("schema", None) or f"s_{uuid.uuid4().hex[:8]}"
    sql(dsn, "CREATE SCHEMA IF NOT EXISTS {schema}", schema=schema)
    return {"kind": "postgresql", "dsn": dsn, "schema": schema, "table": "events", **extra}


def test_postgres_check_runs_select_1(pg_dsn: str) -> None:
    assert CONNECTOR.check(context(pg(pg_dsn))).ok


@pytest.mark.parametrize(
    ("dsn", "kind"),
    [
        ("postgresql://postgres@127.0.0.1:5432/no_such_database", PermanentError),
        ("postgresql://no_such_role@127.0.0.1:5432/postgres", PermanentError),
        ("postgresql://postgres@host.invalid:5432/postgres", PermanentError),
        ("mysql://postgres@127.0.0.1/postgres", PermanentError),
        ("postgresql://postgres:s3cret-pw@127.0.0.1:1/postgres", TransientError),
    ],
)
def test_postgres_connection_failures_are_classified(dsn: str, kind: type[Exception]) -> None:
    settings = {"kind": "postgresql", "dsn": dsn}
    with pytest.raises(kind) as caught:
        CONNECTOR.check(context(settings))
    if kind is PermanentError:
        assert caught.value.setting == "dsn"  # type: ignore[attr-defined]
    assert "s3cret-pw" not in str(caught.value)


def test_postgres_deliver_creates_the_table_and_upserts_on_the_event_id(pg_dsn: str) -> None:
    settings = pg(pg_dsn)
    ctx = context(settings)
    CONNECTOR.deliver(ctx, event(1, status="placed"), "evt_1")
    CONNECTOR.deliver(ctx, event(1, status="paid"), "evt_1")  # a retry, or a corrected payload: one row
    CONNECTOR.deliver(ctx, event(2), "evt_2")
    rows = sql(pg_dsn, "SELECT id, type, occurred_at, data FROM {schema}.events ORDER BY id", schema=settings["schema"])
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("evt_1", "order.created", {"order": 1, "status": "paid"}),
        ("evt_2", "order.created", {"order": 2}),
    ]
    assert rows[0][2] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_postgres_deliver_batch_fails_only_the_refused_event(pg_dsn: str) -> None:
    settings = pg(pg_dsn)
    bad = {**event(2), "occurred_at": "not a time"}
    outcomes = CONNECTOR.deliver_batch(context(settings), [(event(1), "evt_1"), (bad, "evt_2"), (event(3), "evt_3")])
    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], PermanentError)
    stored = sql(pg_dsn, "SELECT id FROM {schema}.events ORDER BY id", schema=settings["schema"])
    assert [r[0] for r in stored] == ["evt_1", "evt_3"]


def test_postgres_deliver_into_a_missing_schema_names_it(pg_dsn: str) -> None:
    settings = {"kind": "postgresql", "dsn": pg_dsn, "schema": "no_such_schema"}
    with pytest.raises(PermanentError) as caught:
        CONNECTOR.deliver(context(settings), event(1), "evt_1")
    assert caught.value.setting in ("schema", "table")


def source_table(dsn: str, count: int) -> dict[str, Any]:
    settings = pg(dsn, sourceTable="orders", cursorColumn="updated_at", primaryKey="id")
    schema = settings["schema"]
    sql(
        dsn,
        "CREATE TABLE {schema}.orders (id bigint PRIMARY KEY, updated_at timestamptz, total numeric)",
        schema=schema,
    )
    sql(
        dsn,
        "INSERT INTO {schema}.orders SELECT n, TIMESTAMPTZ '2026-01-01 00:00:00.000001+00' + (n / 3) * "
        "INTERVAL '1 second', n * 1.5 FROM generate_series(1, %s) AS n",
        [count],
        schema=schema,
    )
    return settings


def test_postgres_sync_pages_to_the_end_and_resumes_from_every_checkpoint(pg_dsn: str) -> None:
    count = 2 * _postgres.PAGE_ROWS + 5
    settings = source_table(pg_dsn, count)
    records, states = consume(context(settings))
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == count
    assert len(states) == 3
    assert records[0]["data"] == {"id": 1, "updated_at": "2026-01-01T00:00:00.000001Z", "total": "1.5"}
    assert records[0]["occurred_at"] == "2026-01-01T00:00:00.000001Z"
    for number, state in enumerate(states[:-1], 1):
        resumed, _ = consume(context(settings, state))
        assert [r["id"] for r in resumed] == ids[number * _postgres.PAGE_ROWS :]
    stopped, first = consume(context(settings), stop_after=1)
    assert len(stopped) == _postgres.PAGE_ROWS
    rest, _ = consume(context(settings, first[0]))
    assert [r["id"] for r in stopped + rest] == ids


def test_postgres_sync_reads_changed_rows_and_skips_null_cursors(pg_dsn: str) -> None:
    settings = source_table(pg_dsn, 4)
    _, states = consume(context(settings))
    schema = settings["schema"]
    moved = datetime(2026, 3, 1, tzinfo=UTC)
    sql(pg_dsn, "UPDATE {schema}.orders SET updated_at = %s WHERE id = 2", [moved], schema=schema)
    later_row = [moved + timedelta(seconds=1)]
    sql(pg_dsn, "INSERT INTO {schema}.orders VALUES (5, NULL, 1), (6, %s, 2)", later_row, schema=schema)
    records, later = consume(context(settings, states[-1]))
    assert [r["data"]["id"] for r in records] == [2, 6]
    assert records[0]["id"] == "orders:2@2026-03-01T00:00:00Z"
    assert later[-1] == {"cursor": "2026-03-01T00:00:01Z", "key": 6}


@pytest.mark.parametrize(
    ("extra", "setting"), [({"sourceTable": "missing"}, "sourceTable"), ({"cursorColumn": "nope"}, "cursorColumn")]
)
def test_postgres_sync_refusals_name_the_setting(pg_dsn: str, extra: dict[str, Any], setting: str) -> None:
    settings = {**source_table(pg_dsn, 1), **extra}
    with pytest.raises(PermanentError) as caught:
        consume(context(settings))
    assert caught.value.setting == setting
