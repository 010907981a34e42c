"""The store itself: migrations match the tables, datetimes stay aware, secrets rotate."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet

from interlink.ids import new_id
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
