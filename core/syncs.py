"""Pull syncs as a tenant sees them: trigger one, list and read runs, cancel one.

The database keeps one queued or running run per integration (a partial unique index), so triggers on
several API nodes at once start one run, and every caller gets its id. Every query is scoped by tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from interlink.errors import ConflictError, NotFoundError
from interlink.ids import new_id
from interlink.pipeline.sync import settle_status
from interlink.runtime import Runtime
from interlink.store import integrations as integration_rows
from interlink.store.tables import SYNC_ACTIVE, sync_runs

__all__ = ["SYNC_STATUSES", "TRIGGERS", "cancel_sync", "get_sync", "list_syncs", "trigger_sync"]

SYNC_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TRIGGERS = ("manual", "schedule")

_VIEW = [
    sync_runs.c.id,
    sync_runs.c.integration_id,
    sync_runs.c.status,
    sync_runs.c.trigger,
    sync_runs.c.records_read,
    sync_runs.c.error,
    sync_runs.c.cancel_requested,
    sync_runs.c.created_at,
    sync_runs.c.started_at,
    sync_runs.c.finished_at,
    sync_runs.c.updated_at,
]


def _view(row: sa.Row[Any]) -> dict[str, Any]:
    return {str(column.name): getattr(row, column.name) for column in _VIEW}


def _require_integration(conn: sa.Connection, tenant_id: str, integration_id: str) -> integration_rows.Integration:
    integration = integration_rows.get_integration(conn, tenant_id, integration_id)
    if integration is None:
        raise NotFoundError(f"integration '{integration_id}' not found")
    return integration


def trigger_sync(runtime: Runtime, tenant_id: str, integration_id: str, *, trigger: str = "manual") -> tuple[str, bool]:
    """Queue a sync of the integration; returns its run id and whether it is new.

    If a run is already queued or running, that run's id is returned and nothing new is queued. A
    disabled integration, or one whose connector cannot sync, is refused with :class:`ConflictError`.
    """
    for _ in range(5):
        with runtime.engine.connect() as conn:
            integration = _require_integration(conn, tenant_id, integration_id)
        if not integration.enabled:
            raise ConflictError(f"integration '{integration_id}' is disabled; enable it before syncing")
        registered = runtime.registry.get(integration.service)
        if registered is None:
            raise ConflictError(f"no installed connector for service '{integration.service}'; nothing can sync it")
        if "sync" not in registered.manifest.capabilities:
            raise ConflictError(
                f"the {integration.service} connector does not sync: it only receives or delivers events"
            )
        now = datetime.now(UTC)
        run_id = new_id("sync")
        try:
            with runtime.engine.begin() as conn:
                active = conn.execute(
                    sa.select(sync_runs.c.id).where(
                        sync_runs.c.integration_id == integration_id, sync_runs.c.status.in_(SYNC_ACTIVE)
                    )
                ).scalar()
                if active is not None:
                    return active, False
                conn.execute(
                    sync_runs.insert().values(
                        id=run_id,
                        tenant_id=tenant_id,
                        integration_id=integration_id,
                        status="queued",
                        trigger=trigger,
                        records_read=0,
                        cancel_requested=False,
                        dispatched_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except sa.exc.IntegrityError:
            continue  # another node queued one meanwhile (or the integration was deleted): look again
        runtime.pipeline.dispatch_syncs([run_id])
        return run_id, True
    raise ConflictError(f"integration '{integration_id}' is changing too fast to sync; try again")


def list_syncs(
    runtime: Runtime, tenant_id: str, integration_id: str, *, page: int = 1, limit: int = 50
) -> tuple[list[dict[str, Any]], bool]:
    """A page of the integration's sync runs, newest first, and whether more follow."""
    with runtime.engine.connect() as conn:
        _require_integration(conn, tenant_id, integration_id)
        rows = conn.execute(
            sa.select(*_VIEW)
            .where(sync_runs.c.tenant_id == tenant_id, sync_runs.c.integration_id == integration_id)
            .order_by(sync_runs.c.id.desc())
            .limit(limit + 1)
            .offset((page - 1) * limit)
        ).all()
    return [_view(r) for r in rows[:limit]], len(rows) > limit


def get_sync(runtime: Runtime, tenant_id: str, integration_id: str, sync_id: str) -> dict[str, Any]:
    """One sync run of the integration."""
    with runtime.engine.connect() as conn:
        row = _one(conn, tenant_id, integration_id, sync_id)
    return _view(row)


def _one(conn: sa.Connection, tenant_id: str, integration_id: str, sync_id: str) -> sa.Row[Any]:
    row = conn.execute(
        sa.select(*_VIEW).where(
            sync_runs.c.id == sync_id,
            sync_runs.c.tenant_id == tenant_id,
            sync_runs.c.integration_id == integration_id,
        )
    ).first()
    if row is None:
        raise NotFoundError(f"sync '{sync_id}' of integration '{integration_id}' not found")
    return row


def cancel_sync(runtime: Runtime, tenant_id: str, integration_id: str, sync_id: str) -> dict[str, Any]:
    """Cancel a queued run at once; ask a running one to stop at its next checkpoint (409 once finished).

    Records committed before the cancel stay published and the cursor keeps their place: the next sync
    goes on from there.
    """
    now = datetime.now(UTC)
    mine = (
        sync_runs.c.id == sync_id,
        sync_runs.c.tenant_id == tenant_id,
        sync_runs.c.integration_id == integration_id,
    )
    with runtime.engine.begin() as conn:
        row = _one(conn, tenant_id, integration_id, sync_id)
        if row.status not in SYNC_ACTIVE:
            raise ConflictError(f"sync '{sync_id}' is already {row.status}; it cannot be cancelled")
        queued = conn.execute(
            sync_runs.update()
            .where(*mine, sync_runs.c.status == "queued")
            .values(status="cancelled", cancel_requested=True, finished_at=now, updated_at=now)
        ).rowcount
        if queued:
            settle_status(conn, integration_id)  # a run resumed by the reaper may have left "syncing"
        else:
            conn.execute(
                sync_runs.update()
                .where(*mine, sync_runs.c.status == "running")
                .values(cancel_requested=True, updated_at=now)
            )
        row = _one(conn, tenant_id, integration_id, sync_id)
    return _view(row)
