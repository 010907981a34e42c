"""An integration's event figures from hourly counters, exact and fast at any number of events.

Every writer of ``events`` rows calls :func:`count_events` in the same transaction, so ``event_counts``
holds the exact number of events per integration and hour (UTC). :func:`integration_stats` then reads:

* ``events_total``: the sum of the integration's buckets (one row per hour, ~1,500 for two months);
* ``earliest_event_at``: ``MIN(created_at)`` from ``events`` itself, one step down the index
  ``ix_events_filter_integration_time`` (tenant, integration, created_at): exact to the microsecond. It
  is bounded below by the integration's first bucket, so that whatever index a planner picks (PostgreSQL
  takes ``ix_events_filter_time`` when a tenant has one integration), it starts in the first event's hour,
  not at the tenant's oldest event; without buckets (events written before the counters) the unbounded
  MIN answers instead;
* ``events_last_24h``: the events created at or after ``now - 24h``. The window starts inside an hour
  (the *edge hour*), so whole buckets cover all but part of that hour, and an index range count over
  ``events`` covers the part: either the part inside the window is counted and added to the buckets
  after the edge hour, or the part before the window is counted and subtracted from the buckets from
  the edge hour on, whichever part is shorter. Both are exact, since a bucket is the exact count of its
  hour; the count never reads more than half an hour of one integration's events.

All four figures come from one statement, so they are read from one snapshot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from interlink.store.tables import event_counts, events

__all__ = ["IntegrationStats", "bucket_counts", "count_events", "hour_of", "integration_stats", "stats_query"]

HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)

_upserts: dict[str, sa.Insert] = {}


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour ``moment`` falls in: the key of its bucket."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _upsert(dialect: str) -> sa.Insert:
    """``INSERT ... ON CONFLICT (integration_id, hour) DO UPDATE SET count = count + excluded.count``."""
    statement = _upserts.get(dialect)
    if statement is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        base = insert(event_counts)
        statement = base.on_conflict_do_update(
            index_elements=[event_counts.c.integration_id, event_counts.c.hour],
            set_={"count": event_counts.c.count + base.excluded["count"]},
        )
        _upserts[dialect] = statement
    return statement


def count_events(conn: sa.Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """Add ``rows`` (new ``events`` rows: ``tenant_id``, ``integration_id``, ``created_at``) to their buckets.

    Call it in the transaction that inserts the rows. It runs one statement (none for no rows), with one
    parameter set per (integration, hour), in key order so that concurrent writers lock buckets in the
    same order and cannot deadlock each other.
    """
    buckets = bucket_counts(rows)
    if not buckets:
        return
    params = [
        {"integration_id": integration_id, "hour": hour, "tenant_id": tenant_id, "count": count}
        for integration_id, hour, tenant_id, count in buckets
    ]
    conn.execute(_upsert(conn.dialect.name), params)


def bucket_counts(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, datetime, str, int]]:
    """``(integration_id, hour, tenant_id, count)`` of ``rows`` per bucket, in key order (the lock order)."""
    counts: Counter[tuple[str, datetime, str]] = Counter()
    hours: dict[datetime, datetime] = {}  # a writer's rows share a few creation times: each is cut once
    for row in rows:
        created = row["created_at"]
        hour = hours.get(created)
        if hour is None:
            hour = hours[created] = hour_of(created)
        counts[(row["integration_id"], hour, row["tenant_id"])] += 1
    return [(integration_id, hour, tenant_id, n) for (integration_id, hour, tenant_id), n in sorted(counts.items())]


@dataclass(frozen=True)
class IntegrationStats:
    """The ``sync_stats`` of an integration: both directions, every status."""

    events_last_24h: int
    events_total: int
    earliest_event_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_last_24h": self.events_last_24h,
            "events_total": self.events_total,
            "earliest_event_at": self.earliest_event_at,
        }


def integration_stats(conn: sa.Connection, tenant_id: str, integration_id: str, now: datetime) -> IntegrationStats:
    """The figures of one integration of ``tenant_id`` at ``now`` (see the module's docstring for how)."""
    total, last_24h, first = conn.execute(stats_query(tenant_id, integration_id, now)).one()
    return IntegrationStats(int(last_24h), int(total), first)


def stats_query(tenant_id: str, integration_id: str, now: datetime) -> sa.Select[tuple[Any, Any, datetime | None]]:
    """The one statement :func:`integration_stats` runs: ``(total, last_24h, earliest)``."""
    start = now.astimezone(UTC) - DAY
    edge = hour_of(start)
    after_edge = edge + HOUR
    mine = (events.c.tenant_id == tenant_id, events.c.integration_id == integration_id)

    def buckets(*where: sa.ColumnElement[bool]) -> sa.ScalarSelect[Any]:
        return (
            sa.select(sa.func.coalesce(sa.func.sum(event_counts.c.count), 0))
            .where(event_counts.c.integration_id == integration_id, event_counts.c.tenant_id == tenant_id, *where)
            .scalar_subquery()
        )

    def count_between(low: datetime, high: datetime) -> sa.ScalarSelect[Any]:
        return (
            sa.select(sa.func.count())
            .select_from(events)
            .where(*mine, events.c.created_at >= low, events.c.created_at < high)
            .scalar_subquery()
        )

    if start == edge:
        recent: sa.ColumnElement[Any] = buckets(event_counts.c.hour >= edge)
    elif start - edge <= after_edge - start:  # the part before the window is the shorter one
        recent = buckets(event_counts.c.hour >= edge) - count_between(edge, start)
    else:
        recent = buckets(event_counts.c.hour >= after_edge) + count_between(start, after_edge)
    first_hour = (
        sa.select(sa.func.min(event_counts.c.hour))
        .where(event_counts.c.integration_id == integration_id, event_counts.c.tenant_id == tenant_id)
        .scalar_subquery()
    )
    earliest = sa.func.coalesce(
        sa.select(sa.func.min(events.c.created_at)).where(*mine, events.c.created_at >= first_hour).scalar_subquery(),
        sa.select(sa.func.min(events.c.created_at)).where(*mine).scalar_subquery(),  # no bucket: never read
    )
    return sa.select(
        buckets().label("total"),
        recent.label("last_24h"),
        sa.type_coerce(earliest, events.c.created_at.type).label("earliest"),
    )
