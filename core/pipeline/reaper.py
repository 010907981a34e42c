"""The reaper: finds events no worker will finish and sends them again.

Two cases (DESIGN.md, "the database is the truth"): a ``processing`` row whose lease expired (its
worker died mid-delivery), and a ``queued`` row that is due but whose message has not been consumed
for a while (the message was lost: a broker restart, a crash between commit and send). Each row is
taken by compare-and-set, so reapers on several nodes never send the same row twice in one pass.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from interlink.store.tables import events

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["Reaper", "reap"]

log = logging.getLogger(__name__)
BATCH = 1000


def reap(runtime: Runtime, now: datetime | None = None) -> list[str]:
    """One pass: requeue expired leases, resend stale queued rows; returns the ids sent."""
    now = now or datetime.now(UTC)
    stale = now - timedelta(seconds=runtime.config.redispatch_after)
    with runtime.engine.begin() as conn:
        expired = (
            conn.execute(
                sa.select(events.c.id)
                .where(events.c.status == "processing", events.c.lease_expires_at < now)
                .limit(BATCH)
            )
            .scalars()
            .all()
        )
        revived = (
            conn.execute(
                events.update()
                .where(events.c.id.in_(expired), events.c.status == "processing", events.c.lease_expires_at < now)
                .values(
                    status="queued",
                    lease_token=None,
                    lease_expires_at=None,
                    next_attempt_at=now,
                    dispatched_at=now,
                    updated_at=now,
                    last_error="the worker was lost mid-delivery; sent again",
                )
                .returning(events.c.id)
            )
            .scalars()
            .all()
            if expired
            else []
        )
        lost = (
            conn.execute(
                sa.select(events.c.id)
                .where(
                    events.c.status == "queued",
                    events.c.next_attempt_at <= stale,
                    sa.or_(events.c.dispatched_at.is_(None), events.c.dispatched_at <= stale),
                )
                .limit(BATCH)
            )
            .scalars()
            .all()
        )
        resent = (
            conn.execute(
                events.update()
                .where(
                    events.c.id.in_(lost),
                    events.c.status == "queued",
                    sa.or_(events.c.dispatched_at.is_(None), events.c.dispatched_at <= stale),
                )
                .values(dispatched_at=now)
                .returning(events.c.id)
            )
            .scalars()
            .all()
            if lost
            else []
        )
    ids = [*revived, *resent]
    if ids:
        log.info("reaper: %d expired leases, %d lost messages sent again", len(revived), len(resent))
        runtime.pipeline.dispatch(ids)
    return ids


class Reaper(threading.Thread):
    """Runs :func:`reap` every ``config.reaper_interval`` seconds until stopped."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(name="interlink-reaper", daemon=True)
        self._runtime = runtime
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._runtime.config.reaper_interval):
            try:
                reap(self._runtime)
            except Exception:  # the next pass tries again; the database is the truth
                log.exception("reaper pass failed")

    def stop(self) -> None:
        self._stopped.set()
