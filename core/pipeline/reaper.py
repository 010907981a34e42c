"""The reaper: finds events and sync runs no worker will finish and sends them again.

Two cases (DESIGN.md, "the database is the truth"): a ``processing`` event or ``running`` sync whose
lease expired (its worker died mid-way), and a ``queued`` row whose message has not been consumed for
a while (the message was lost: a broker restart, a crash between commit and send). Each row is taken
by compare-and-set, so reapers on several nodes never send the same row twice in one pass. A revived
sync resumes from its last checkpoint.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from interlink.pipeline.hook_worker import reap_hooks
from interlink.pipeline.sync import settle_status
from interlink.store.tables import events, sync_runs

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["Reaper", "reap", "reap_syncs"]

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


def reap_syncs(runtime: Runtime, now: datetime | None = None) -> list[str]:
    """Requeue runs whose worker died (cancelled instead if a cancel was asked), resend lost messages."""
    now = now or datetime.now(UTC)
    stale = now - timedelta(seconds=runtime.config.redispatch_after)
    free = {"lease_token": None, "lease_expires_at": None, "updated_at": now}
    expired = (sync_runs.c.status == "running", sync_runs.c.lease_expires_at < now)
    with runtime.engine.begin() as conn:
        cancelled = (
            conn.execute(
                sync_runs.update()
                .where(*expired, sync_runs.c.cancel_requested.is_(True))
                .values(status="cancelled", finished_at=now, **free)
                .returning(sync_runs.c.integration_id)
            )
            .scalars()
            .all()
        )
        for integration_id in cancelled:
            settle_status(conn, integration_id)
        revived = (
            conn.execute(
                sync_runs.update()
                .where(*expired)
                .values(status="queued", dispatched_at=now, **free)
                .returning(sync_runs.c.id)
            )
            .scalars()
            .all()
        )
        resent = (
            conn.execute(
                sync_runs.update()
                .where(
                    sync_runs.c.status == "queued",
                    sa.or_(sync_runs.c.dispatched_at.is_(None), sync_runs.c.dispatched_at <= stale),
                )
                .values(dispatched_at=now)
                .returning(sync_runs.c.id)
            )
            .scalars()
            .all()
        )
    ids = [*revived, *resent]
    if ids:
        log.info("reaper: %d syncs resumed after a lost worker, %d lost messages sent again", len(revived), len(resent))
        runtime.pipeline.dispatch_syncs(ids)
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
                reap_syncs(self._runtime)
                reap_hooks(self._runtime)
            except Exception:  # the next pass tries again; the database is the truth
                log.exception("reaper pass failed")

    def stop(self) -> None:
        self._stopped.set()
