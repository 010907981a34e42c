"""Integration rows and their synchronizations; every query is scoped by tenant."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlink.store.tables import integrations, synchronizations

__all__ = [
    "INTEGRATION",
    "NOTIFICATION",
    "Integration",
    "Synchronization",
    "delete_integration",
    "get_integration",
    "get_integrations_by_ids",
    "insert_integration",
    "list_integrations",
    "update_integration",
]


INTEGRATION = "integration"
"""The ``kind`` of what a tenant configures under /v1/integrations."""
NOTIFICATION = "notification"
"""The ``kind`` of a tenant's notification endpoint (/v1/webhooks): delivered to through the same pipeline,
never shown, changed or synced as an integration. Tenant-facing queries take ``kind`` and default to
:data:`INTEGRATION`; the workers' :func:`get_integrations_by_ids` serves both kinds."""


@dataclass(frozen=True)
class Synchronization:
    event_type: str
    enabled: bool


@dataclass
class Integration:
    """An integration as stored: ``settings`` hold secrets sealed (encrypted), never in clear."""

    id: str
    tenant_id: str
    service: str
    name: str
    enabled: bool
    settings: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime
    synchronizations: list[Synchronization] = field(default_factory=list)
    last_synced_at: datetime | None = None
    error_message: str | None = None
    inbound_key_hash: str | None = None
    sync_interval: int | None = None
    retry_schedule: list[int] | None = None
    signing_secret: str | None = None
    """Sealed (encrypted) Standard Webhooks secret of a ``custom`` integration."""
    kind: str = INTEGRATION

    @property
    def effective_status(self) -> str:
        """What the API shows: a disabled integration is ``disconnected`` whatever happened before."""
        return "disconnected" if not self.enabled else self.status


_COLUMNS = [
    "id",
    "tenant_id",
    "service",
    "name",
    "enabled",
    "settings",
    "status",
    "created_at",
    "updated_at",
    "last_synced_at",
    "error_message",
    "inbound_key_hash",
    "sync_interval",
    "retry_schedule",
    "signing_secret",
    "kind",
]


def _values(integration: Integration) -> dict[str, Any]:
    return {name: getattr(integration, name) for name in _COLUMNS}


def _write_synchronizations(conn: sa.Connection, integration: Integration) -> None:
    conn.execute(synchronizations.delete().where(synchronizations.c.integration_id == integration.id))
    if integration.synchronizations:
        conn.execute(
            synchronizations.insert(),
            [
                {
                    "integration_id": integration.id,
                    "tenant_id": integration.tenant_id,
                    "event_type": s.event_type,
                    "enabled": s.enabled,
                    "position": i,
                }
                for i, s in enumerate(integration.synchronizations)
            ],
        )


def insert_integration(conn: sa.Connection, integration: Integration) -> None:
    conn.execute(integrations.insert().values(**_values(integration)))
    _write_synchronizations(conn, integration)


_RUNTIME_COLUMNS = ("status", "last_synced_at", "error_message")
"""Written by the sync pipeline only: a configuration change must not put back a status read before it."""


def update_integration(conn: sa.Connection, integration: Integration) -> None:
    """Write the configuration; the status a running sync maintains is left as it is."""
    values = _values(integration)
    kept = ("id", "tenant_id", "created_at", *_RUNTIME_COLUMNS)
    conn.execute(
        integrations.update()
        .where(integrations.c.id == integration.id, integrations.c.tenant_id == integration.tenant_id)
        .values(**{k: v for k, v in values.items() if k not in kept})
    )
    _write_synchronizations(conn, integration)


def delete_integration(conn: sa.Connection, tenant_id: str, integration_id: str, *, kind: str = INTEGRATION) -> bool:
    mine = (integrations.c.id == integration_id, integrations.c.tenant_id == tenant_id, integrations.c.kind == kind)
    if conn.execute(sa.select(integrations.c.id).where(*mine)).first() is None:
        return False
    conn.execute(
        synchronizations.delete().where(
            synchronizations.c.integration_id == integration_id, synchronizations.c.tenant_id == tenant_id
        )
    )
    result = conn.execute(integrations.delete().where(*mine))
    return result.rowcount > 0


def get_integration(
    conn: sa.Connection, tenant_id: str, integration_id: str, *, kind: str = INTEGRATION
) -> Integration | None:
    row = conn.execute(
        sa.select(integrations).where(
            integrations.c.id == integration_id, integrations.c.tenant_id == tenant_id, integrations.c.kind == kind
        )
    ).first()
    if row is None:
        return None
    return _attach_synchronizations(conn, [row])[0]


def get_integrations_by_ids(
    conn: sa.Connection, integration_ids: Iterable[str], *, with_synchronizations: bool = True
) -> list[Integration]:
    """Integrations by id, whatever their tenant: for workers, which act on rows already scoped."""
    ids = list(integration_ids)
    if not ids:
        return []
    rows = conn.execute(sa.select(integrations).where(integrations.c.id.in_(ids))).all()
    if not with_synchronizations:
        return [Integration(**{name: getattr(r, name) for name in _COLUMNS}) for r in rows]
    return _attach_synchronizations(conn, rows)


def list_integrations(
    conn: sa.Connection,
    tenant_id: str,
    *,
    service: str | None = None,
    status: str | None = None,
    query: str | None = None,
    limit: int = 50,
    offset: int = 0,
    kind: str = INTEGRATION,
) -> list[Integration]:
    """Integrations of one tenant, oldest first, filtered by service, effective status and a search text."""
    stmt = sa.select(integrations).where(integrations.c.tenant_id == tenant_id, integrations.c.kind == kind)
    if service is not None:
        stmt = stmt.where(integrations.c.service == service)
    if status == "disconnected":
        stmt = stmt.where(integrations.c.enabled.is_(False))
    elif status is not None:
        stmt = stmt.where(integrations.c.enabled.is_(True), integrations.c.status == status)
    if query:
        needle = query.lower()
        stmt = stmt.where(
            sa.or_(
                sa.func.lower(integrations.c.name).contains(needle, autoescape=True),
                sa.func.lower(integrations.c.service).contains(needle, autoescape=True),
                sa.func.lower(integrations.c.id).contains(needle, autoescape=True),
            )
        )
    rows = conn.execute(stmt.order_by(integrations.c.id).limit(limit).offset(offset)).all()
    return _attach_synchronizations(conn, rows)


def _attach_synchronizations(conn: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[Integration]:
    ids = [r.id for r in rows]
    by_integration: dict[str, list[Synchronization]] = {i: [] for i in ids}
    if ids:
        sync_rows = conn.execute(
            sa.select(synchronizations)
            .where(synchronizations.c.integration_id.in_(ids))
            .order_by(synchronizations.c.integration_id, synchronizations.c.position)
        )
        for s in sync_rows:
            by_integration[s.integration_id].append(Synchronization(s.event_type, s.enabled))
    return [
        Integration(**{name: getattr(r, name) for name in _COLUMNS}, synchronizations=by_integration[r.id])
        for r in rows
    ]
