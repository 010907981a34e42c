"""Inbound webhook requests keep their query string: some vendors send their fields in it, with GET.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_requests") as batch:
        batch.add_column(sa.Column("query", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_requests") as batch:
        batch.drop_column("query")
