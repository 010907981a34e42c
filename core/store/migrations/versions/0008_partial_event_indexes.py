"""The reaper's and the retry link's indexes on ``events`` hold only the rows they are searched for.

``ix_events_due`` (queued rows by ``next_attempt_at``), ``ix_events_lease`` (leased rows by
``lease_expires_at``) and ``ix_events_retry_of`` indexed every event, though most events (every one a
sync or a webhook received, every delivery done) have none of those columns set. As partial indexes
(``... IS NOT NULL``) they hold the few rows in flight or retried, and writing an inbound event no longer
updates them: a third less index work per row for a sync. The queries that use them compare the column
(``<``, ``<=``, ``=``), which both databases take as implying ``IS NOT NULL``.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_events_due", ("status", "next_attempt_at"), "next_attempt_at"),
    ("ix_events_lease", ("status", "lease_expires_at"), "lease_expires_at"),
    ("ix_events_retry_of", ("retry_of",), "retry_of"),
)


def upgrade() -> None:
    for name, columns, set_column in _INDEXES:
        op.drop_index(name, table_name="events")
        where = sa.text(f"{set_column} IS NOT NULL")
        op.create_index(name, "events", list(columns), sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name, columns, _ in _INDEXES:
        op.drop_index(name, table_name="events")
        op.create_index(name, "events", list(columns))
