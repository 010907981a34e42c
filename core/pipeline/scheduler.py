"""The sync scheduler: queues each enabled integration's sync when its interval has come.

The interval is the integration's ``sync_interval``, else its manifest's ``default_sync_interval``
(neither: never scheduled). When the next slot is due is kept in the database (``next_sync_at``), so it
survives restarts, and a node takes a slot by compare-and-set on it: schedulers on several nodes at once
start each sync once per interval. After failed runs in a row (``sync_failures``) the next slot is
further away: the interval doubles with each failure, up to 2**:data:`MAX_BACKOFF_DOUBLINGS` times.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from interlink.errors import ConflictError, NotFoundError
from interlink.store.tables import integrations

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["MAX_BACKOFF_DOUBLINGS", "Scheduler", "next_slot", "schedule_due"]

log = logging.getLogger(__name__)
BATCH = 500
MAX_BACKOFF_DOUBLINGS = 6


def next_slot(now: datetime, interval: int, failures: int) -> datetime:
    """When the sync after one taken ``now`` is due: the interval, doubled for each failure in a row."""
    return now + timedelta(seconds=interval * 2 ** min(max(failures, 0), MAX_BACKOFF_DOUBLINGS))


def _intervals(runtime: Runtime) -> dict[str, int | None]:
    """The services whose connectors sync, with their manifest's default interval."""
    return {
        service: registered.manifest.default_sync_interval
        for service, registered in runtime.registry.connectors.items()
        if "sync" in registered.manifest.capabilities
    }


def schedule_due(runtime: Runtime, now: datetime | None = None) -> list[str]:
    """One pass: queue the sync of every integration whose slot has come; returns the new run ids.

    A slot is taken by compare-and-set on ``next_sync_at``, so of several nodes passing at once only one
    queues the run. An integration with a run already queued or running gets no second one (its slot is
    still taken: the next one comes an interval later).
    """
    from interlink.syncs import trigger_sync  # the API's trigger path (imports the pipeline in turn)

    now = now or datetime.now(UTC)
    defaults = _intervals(runtime)
    if not defaults:
        return []
    with runtime.engine.connect() as conn:
        due = conn.execute(
            sa.select(
                integrations.c.id,
                integrations.c.tenant_id,
                integrations.c.service,
                integrations.c.sync_interval,
                integrations.c.next_sync_at,
                integrations.c.sync_failures,
            )
            .where(
                integrations.c.enabled.is_(True),
                integrations.c.service.in_(list(defaults)),
                sa.or_(  # without an interval, never due (so such rows cannot crowd out the batch)
                    integrations.c.sync_interval.is_not(None),
                    integrations.c.service.in_([s for s, interval in defaults.items() if interval]),
                ),
                sa.or_(integrations.c.next_sync_at.is_(None), integrations.c.next_sync_at <= now),
            )
            .order_by(integrations.c.next_sync_at, integrations.c.id)
            .limit(BATCH)
        ).all()
    created: list[str] = []
    for row in due:
        interval = row.sync_interval or defaults.get(row.service)
        if not interval:
            continue
        seen = (
            integrations.c.next_sync_at.is_(None)
            if row.next_sync_at is None
            else (integrations.c.next_sync_at == row.next_sync_at)
        )
        with runtime.engine.begin() as conn:
            taken = conn.execute(
                integrations.update()
                .where(integrations.c.id == row.id, seen)
                .values(next_sync_at=next_slot(now, interval, row.sync_failures))
            ).rowcount
        if taken != 1:
            continue  # another node took this slot
        try:
            run_id, new = trigger_sync(runtime, row.tenant_id, row.id, trigger="schedule")
        except (ConflictError, NotFoundError) as exc:  # disabled or deleted meanwhile
            log.info("scheduler: integration %s not synced: %s", row.id, exc)
            continue
        if new:
            created.append(run_id)
    if created:
        log.info("scheduler: %d scheduled syncs queued", len(created))
    return created


class Scheduler(threading.Thread):
    """Runs :func:`schedule_due` every ``config.scheduler_interval`` seconds until stopped."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(name="interlink-scheduler", daemon=True)
        self._runtime = runtime
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._runtime.config.scheduler_interval):
            try:
                schedule_due(self._runtime)
            except Exception:  # the next pass tries again; the database is the truth
                log.exception("scheduler pass failed")

    def stop(self) -> None:
        self._stopped.set()
