"""The store itself: migrations match the tables, datetimes stay aware, secrets rotate."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet

from interlink.ids import new_id, new_ids
from interlink.runtime import Runtime
from interlink.secrets import MASK, KeyRing, SecretKeyError, mask_settings, merge_settings, redact
from interlink.store import create_engine, is_up_to_date, migrate
from interlink.store.tables import metadata


def test_migrations_create_exactly_the_tables(database_url: str) -> None:
    engine = create_engine(database_url)
    migrate(engine)
    assert is_up_to_date(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    migrate(engine)  # a second run is a no-op
    engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_datetimes_come_back_aware_utc(runtime: Runtime) -> None:
    from interlink.store.tables import tenants

    moment = datetime(2025, 1, 31, 23, 59, 59, 123456, tzinfo=UTC)
    with runtime.engine.begin() as conn:
        conn.execute(tenants.insert().values(id="tnt_x", name="x", token_hash="h" * 64, created_at=moment))
    with runtime.engine.connect() as conn:
        stored = conn.execute(sa.select(tenants.c.created_at).where(tenants.c.id == "tnt_x")).scalar_one()
    assert stored == moment
    assert stored.tzinfo is not None


def test_ids_are_prefixed_and_time_ordered() -> None:
    earlier = new_id("int", now_ms=1_700_000_000_000)
    later = new_id("int", now_ms=1_700_000_000_001)
    assert earlier.startswith("int_")
    assert len(earlier) == len("int_") + 26
    assert earlier < later
    assert len({new_id("evt") for _ in range(1000)}) == 1000


def test_ids_made_after_a_fork_differ_from_the_parents() -> None:
    """Random bytes are drawn in stock: a forked child (a worker process) must not reuse the parent's."""
    new_ids("evt", 3, now_ms=1)  # the parent has a stock now
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out at once
        os.write(writer, " ".join(new_ids("evt", 50, now_ms=1)).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = set(new_ids("evt", 50, now_ms=1))
    assert len(child) == 50
    assert len(parent) == 50
    assert not child & parent
    assert len(set(new_ids("evt", 5000))) == 5000


def test_key_rotation_keeps_old_secrets_readable(tmp_path: Path) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = KeyRing([old_key]).seal({"apiKey": "sk_live_1", "region": "eu"}, {"apiKey"})
    assert sealed["region"] == "eu"
    assert "sk_live_1" not in sealed["apiKey"]
    rotated = KeyRing([new_key, old_key])
    assert rotated.open(sealed, {"apiKey"}) == {"apiKey": "sk_live_1", "region": "eu"}
    with pytest.raises(SecretKeyError, match="INTERLINK_SECRET_KEY") as info:
        KeyRing([new_key]).open(sealed, {"apiKey"})
    assert "sk_live_1" not in str(info.value)
    with pytest.raises(SecretKeyError):
        KeyRing(["not-a-key"])


def test_generated_key_file_is_private_and_stable(tmp_path: Path) -> None:
    first = KeyRing.load((), tmp_path)
    token = first.encrypt("v")
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert KeyRing.load((), tmp_path).decrypt(token) == "v"


def test_mask_merge_and_redact() -> None:
    assert mask_settings({"apiKey": "abc", "url": "u"}, {"apiKey"}) == {"apiKey": MASK, "url": "u"}
    current = {"apiKey": "old", "baseUrl": "https://a"}
    assert merge_settings(current, {"apiKey": MASK}) == current
    assert merge_settings(current, {"apiKey": "new"}) == {"apiKey": "new", "baseUrl": "https://a"}
    assert merge_settings(current, {"baseUrl": None}) == {"apiKey": "old"}
    assert redact("Bearer sk_live_123 sent", ["sk_live_123"]) == f"Bearer {MASK} sent"


def test_bulk_insert_on_sqlite_splits_at_the_variable_limit_and_keeps_zones(tmp_path: Path) -> None:
    import sqlite3
    from datetime import timedelta, timezone

    from interlink.store.bulk import insert_rows
    from interlink.store.tables import tenants

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    migrate(engine)
    plus_five = timezone(timedelta(hours=5))
    moments = [datetime(2025, 1, 1, 4, 30, n, 1000 * n, tzinfo=plus_five) for n in range(50)]
    rows = [
        {"id": f"tnt_{n}", "name": f"t{n}", "token_hash": f"{n:064d}", "created_at": m} for n, m in enumerate(moments)
    ]
    with engine.begin() as conn:
        conn.connection.dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 30)  # type: ignore[union-attr]
        insert_rows(conn, tenants, rows)  # 4 columns: 7 rows a statement, 8 statements
    with engine.connect() as conn:
        stored = {row.id: row.created_at for row in conn.execute(sa.select(tenants.c.id, tenants.c.created_at))}
    assert stored == {f"tnt_{n}": m for n, m in enumerate(moments)}  # equal instants, given back in UTC
    assert all(m.tzinfo == UTC for m in stored.values())
    engine.dispose()


def test_bulk_insert_on_sqlite_binds_shared_values_once_and_stores_every_row_as_given(tmp_path: Path) -> None:
    """Columns alike in every row are bound once: what is stored is still each row's own values."""
    import sqlite3

    from interlink.pipeline.publish import payload_row
    from interlink.store.bulk import insert_rows
    from interlink.store.tables import published_events, tenants

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    migrate(engine)
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    rows = [
        {
            **payload_row(
                f"pub_{n:03d}", "tnt_1", f"ext_{n}" if n % 2 else None, "order.created", None, "{}", None, now
            ),
            "size_bytes": True if n == 7 else 1,  # equal to 1, but not the same type: not shared
            "occurred_at": now if n < 40 else now.replace(second=n),
        }
        for n in range(50)
    ]
    executed: list[str] = []
    with engine.begin() as conn:
        conn.execute(tenants.insert().values(id="tnt_1", name="t", token_hash="h" * 64, created_at=now))
        dbapi = conn.connection.dbapi_connection
        dbapi.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 20)  # type: ignore[union-attr]
        dbapi.set_trace_callback(executed.append)  # type: ignore[union-attr]
        insert_rows(conn, published_events, rows)
        dbapi.set_trace_callback(None)  # type: ignore[union-attr]
    inserts = [text for text in executed if text.startswith("INSERT INTO published_events")]
    assert len(inserts) > 1  # split at the limit, the shared values bound in each statement
    assert all(" SELECT " in text and "FROM (VALUES" in text for text in inserts)
    with engine.connect() as conn:
        stored = {row.id: row for row in conn.execute(sa.select(published_events))}
    assert len(stored) == 50
    for row in rows:
        assert {k: getattr(stored[row["id"]], k) for k in row} == {**row, "size_bytes": 1}
    engine.dispose()


def test_the_reaper_finds_its_rows_through_the_partial_indexes(tmp_path: Path) -> None:
    """Most events have no lease and no due time: those indexes hold only the rows that do (``IS NOT NULL``).

    SQLite uses a partial index only when the query implies its condition: the reaper's comparisons must.
    """
    from interlink.config import Config
    from interlink.pipeline.reaper import reap

    keys = (Fernet.generate_key().decode(),)
    runtime = Runtime.start(Config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", keys, None))
    seen: list[tuple[str, Any]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: Any, *args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM events" in statement:
            seen.append((statement, parameters))

    sa.event.listen(runtime.engine, "before_cursor_execute", capture)
    try:
        reap(runtime)
        with runtime.engine.connect() as conn:
            plans = [
                " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
                for statement, parameters in list(seen)
            ]
    finally:
        sa.event.remove(runtime.engine, "before_cursor_execute", capture)
        runtime.close()
    assert len(plans) == 2
    assert "INDEX ix_events_lease" in plans[0], plans[0]
    assert "INDEX ix_events_due" in plans[1], plans[1]
