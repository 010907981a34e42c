"""Pull syncs: sync runs, the ledger of records already published, and each integration's cursor.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.tables import JSONType, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("sync_state", JSONType, nullable=True))
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column(
            "integration_id", sa.String(40), sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False
        ),
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
    )
    op.create_index(
        "uq_sync_runs_active",
        "sync_runs",
        ["integration_id"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.create_index("ix_sync_runs_integration", "sync_runs", ["tenant_id", "integration_id", "id"])
    op.create_index("ix_sync_runs_lease", "sync_runs", ["status", "lease_expires_at"])
    op.create_table(
        "sync_records",
        sa.Column(
            "integration_id",
            sa.String(40),
            sa.ForeignKey("integrations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("record_id", sa.String(200), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("sync_records")
    op.drop_table("sync_runs")
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("sync_state")
