"""The sync scheduler: when each integration's next scheduled sync is due, and its failures in a row.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("next_sync_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("sync_failures", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("sync_failures")
        batch.drop_column("next_sync_at")
