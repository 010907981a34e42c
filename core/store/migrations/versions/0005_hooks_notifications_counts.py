"""Inbound webhook requests, notification endpoints (integration kind), and hourly event counts.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.tables import JSONType, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="integration"))
        batch.add_column(sa.Column("hook_failures", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "webhook_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column(
            "integration_id", sa.String(40), sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("headers", JSONType, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("body_size", sa.Integer(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("events_created", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("dispatched_at", UTCDateTime(), nullable=True),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_webhook_requests_integration", "webhook_requests", ["tenant_id", "integration_id", "id"])
    op.create_index("ix_webhook_requests_lease", "webhook_requests", ["status", "lease_expires_at"])
    op.create_table(
        "event_counts",
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
    # Existing events are counted once here, so the counters start true.
    hour = (
        "date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        if op.get_context().dialect.name == "postgresql"
        else "strftime('%Y-%m-%d %H:00:00.000000', created_at)"
    )
    backfill = (
        "INSERT INTO event_counts (integration_id, hour, tenant_id, count) "  # noqa: S608 - constants only
        f"SELECT integration_id, {hour}, MIN(tenant_id), COUNT(*) FROM events GROUP BY integration_id, {hour}"
    )
    op.execute(backfill)


def downgrade() -> None:
    op.drop_table("event_counts")
    op.drop_index("ix_webhook_requests_lease", "webhook_requests")
    op.drop_index("ix_webhook_requests_integration", "webhook_requests")
    op.drop_table("webhook_requests")
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("hook_failures")
        batch.drop_column("kind")
