"""The event pipeline: published events (the payload store), integration events, communication logs.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.tables import JSONType, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("retry_schedule", JSONType, nullable=True))
        batch.add_column(sa.Column("signing_secret", sa.Text(), nullable=True))
    op.create_table(
        "published_events",
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
    op.create_table(
        "events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column(
            "integration_id", sa.String(40), sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False
        ),
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
    )
    op.create_index(
        "ix_events_filter_integration", "events", ["tenant_id", "integration_id", "status", "created_at", "id"]
    )
    op.create_index(
        "ix_events_filter_integration_time", "events", ["tenant_id", "integration_id", "created_at", "id", "status"]
    )
    op.create_index("ix_events_filter_status", "events", ["tenant_id", "status", "created_at", "id"])
    op.create_index("ix_events_filter_time", "events", ["tenant_id", "created_at", "id"])
    op.create_index("ix_events_due", "events", ["status", "next_attempt_at"])
    op.create_index("ix_events_lease", "events", ["status", "lease_expires_at"])
    op.create_index("ix_events_retry_of", "events", ["retry_of"])
    op.create_table(
        "communication_logs",
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
    )
    op.create_index("ix_communication_logs_event", "communication_logs", ["event_id", "id"])


def downgrade() -> None:
    op.drop_table("communication_logs")
    op.drop_table("events")
    op.drop_table("published_events")
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("signing_secret")
        batch.drop_column("retry_schedule")
