"""The tables, in SQLAlchemy Core; one definition serves SQLite and PostgreSQL.

Migrations in ``migrations/versions`` create these; keep both in step (a test compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

__all__ = ["integrations", "metadata", "synchronizations", "tenants"]

metadata = sa.MetaData()

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite stores no zone, so one is put back on read)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC) if dialect.name != "sqlite" else value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

integrations = sa.Table(
    "integrations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    sa.Column("service", sa.String(50), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("settings", JSONType, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("last_synced_at", UTCDateTime(), nullable=True),
    sa.Column("error_message", sa.Text(), nullable=True),
    sa.Column("inbound_key_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("sync_interval", sa.Integer(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_integrations_tenant_id_id", "tenant_id", "id"),
)

synchronizations = sa.Table(
    "synchronizations",
    metadata,
    sa.Column(
        "integration_id",
        sa.String(40),
        sa.ForeignKey("integrations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("event_type", sa.String(200), primary_key=True),
    sa.Column("tenant_id", sa.String(40), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Index("ix_synchronizations_tenant_event", "tenant_id", "event_type"),
)
