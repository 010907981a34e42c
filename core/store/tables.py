"""The tables, in SQLAlchemy Core; one definition serves SQLite and PostgreSQL.

Migrations in ``migrations/versions`` create these; keep both in step (a test compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

__all__ = [
    "communication_logs",
    "event_counts",
    "events",
    "integrations",
    "metadata",
    "published_events",
    "sync_records",
    "sync_runs",
    "synchronizations",
    "tenants",
    "webhook_requests",
]

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


def _where_set(column: str) -> dict[str, Any]:
    """A partial index's clause on both databases: only the rows where ``column`` is set."""
    where = sa.text(f"{column} IS NOT NULL")
    return {"sqlite_where": where, "postgresql_where": where}


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
    sa.Column("retry_schedule", JSONType, nullable=True),
    sa.Column("signing_secret", sa.Text(), nullable=True),
    sa.Column("sync_state", JSONType, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("next_sync_at", UTCDateTime(), nullable=True),
    sa.Column("sync_failures", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("kind", sa.String(20), nullable=False, server_default="integration"),
    sa.Column("hook_failures", sa.Integer(), nullable=False, server_default="0"),
    sa.Index("ix_integrations_tenant_id_id", "tenant_id", "id"),
)
"""``kind`` is ``integration`` for what a tenant configures under /v1/integrations, and ``notification`` for a
tenant's notification endpoint (/v1/webhooks), which is delivered to through the same pipeline.
``hook_failures`` counts inbound webhooks in a row that failed verification."""

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

published_events = sa.Table(
    "published_events",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=True),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("data", sa.Text(), nullable=False),
    sa.Column("size_bytes", sa.Integer(), nullable=False),
    sa.Column("source_integration_id", sa.String(40), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("tenant_id", "external_id", name="uq_published_events_tenant_external"),
)
"""The payload store: each published or inbound event is stored once; integration events reference it."""

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(40), nullable=False),
    sa.Column("integration_id", sa.String(40), sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("direction", sa.String(10), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("payload_ref", sa.String(40), sa.ForeignKey("published_events.id"), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("dispatched_at", UTCDateTime(), nullable=True),
    sa.Column("lease_token", sa.String(32), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("retry_of", sa.String(40), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Index("ix_events_filter_integration", "tenant_id", "integration_id", "status", "created_at", "id"),
    sa.Index("ix_events_filter_integration_time", "tenant_id", "integration_id", "created_at", "id", "status"),
    sa.Index("ix_events_filter_status", "tenant_id", "status", "created_at", "id"),
    sa.Index("ix_events_filter_time", "tenant_id", "created_at", "id"),
    # partial: only the rows in flight or retried have these set (migration 0008)
    sa.Index("ix_events_due", "status", "next_attempt_at", **_where_set("next_attempt_at")),
    sa.Index("ix_events_lease", "status", "lease_expires_at", **_where_set("lease_expires_at")),
    sa.Index("ix_events_retry_of", "retry_of", **_where_set("retry_of")),
)
"""Integration events: one delivery (outbound) or one received record (inbound) for one integration."""

communication_logs = sa.Table(
    "communication_logs",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(40), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    sa.Column("tenant_id", sa.String(40), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("duration_ms", sa.Float(), nullable=False),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("url", sa.Text(), nullable=False),
    sa.Column("request_headers", JSONType, nullable=False),
    sa.Column("request_body", sa.Text(), nullable=False),
    sa.Column("request_body_size", sa.Integer(), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("response_headers", JSONType, nullable=True),
    sa.Column("response_body", sa.Text(), nullable=True),
    sa.Column("response_body_size", sa.Integer(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Index("ix_communication_logs_event", "event_id", "id"),
)
"""Every HTTP exchange of every attempt, redacted and truncated."""

SYNC_ACTIVE = ("queued", "running")
"""The statuses of a sync run that still has work to do: at most one such run per integration."""

sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(40), nullable=False),
    sa.Column("integration_id", sa.String(40), sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("trigger", sa.String(12), nullable=False),
    sa.Column("records_read", sa.Integer(), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("state", JSONType, nullable=True),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False),
    sa.Column("lease_token", sa.String(32), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("dispatched_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(
        "uq_sync_runs_active",
        "integration_id",
        unique=True,
        sqlite_where=sa.text("status IN ('queued', 'running')"),
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    ),
    sa.Index("ix_sync_runs_integration", "tenant_id", "integration_id", "id"),
    sa.Index("ix_sync_runs_lease", "status", "lease_expires_at"),
)
"""One sync of one integration. The partial unique index keeps one queued or running run per integration,
across every node: a second trigger finds the first instead of starting another."""

sync_records = sa.Table(
    "sync_records",
    metadata,
    sa.Column(
        "integration_id",
        sa.String(40),
        sa.ForeignKey("integrations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("record_id", sa.String(200), primary_key=True),
)
"""The vendor record ids an integration's syncs have published: a record seen again is not published again.

A row is written in the transaction that publishes its record, so only committed records count as seen."""

webhook_requests = sa.Table(
    "webhook_requests",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(40), nullable=False),
    sa.Column("integration_id", sa.String(40), sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("headers", JSONType, nullable=False),
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.Column("body_size", sa.Integer(), nullable=False),
    sa.Column("response_status", sa.Integer(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("events_created", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("query", sa.Text(), nullable=True),
    sa.Column("lease_token", sa.String(32), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("dispatched_at", UTCDateTime(), nullable=True),
    sa.Column("processed_at", UTCDateTime(), nullable=True),
    sa.Index("ix_webhook_requests_integration", "tenant_id", "integration_id", "id"),
    sa.Index("ix_webhook_requests_lease", "status", "lease_expires_at"),
)
"""Every inbound webhook request: accepted ones keep their raw body until a worker parses it (``received`` →
``processing`` → ``processed``/``failed``); refused ones (``rejected``) keep why, for the integration's log."""

event_counts = sa.Table(
    "event_counts",
    metadata,
    sa.Column(
        "integration_id",
        sa.String(40),
        sa.ForeignKey("integrations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("hour", UTCDateTime(), primary_key=True),
    sa.Column("tenant_id", sa.String(40), nullable=False),
    sa.Column("count", sa.BigInteger(), nullable=False),
)
"""How many events each integration got per hour (both directions), kept in the transaction that writes
them, so that ``sync_stats`` never counts over the events table."""
