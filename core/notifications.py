"""Tenant notification webhooks: the endpoints a tenant registers (``/v1/webhooks``) and what is sent to them.

An endpoint is a row of ``integrations`` with kind ``notification`` and service ``custom``, one enabled
synchronization per event type it wants, and its own signing secret. So a notification is an event published
for the tenant and delivered by the ``custom`` connector like any other: Standard Webhooks signature,
retries, communication logs, retry and cancel through the events API, found in the events filter under the
endpoint's ``wh_`` id. Notifications fan out to the tenant's endpoints only (never to its integrations),
and the failure of a notification's own delivery is never notified: no loops.

The pipeline calls one function per trigger (:func:`sync_finished`, :func:`status_changed`,
:func:`deliveries_failed`) inside the transaction that records what happened, and dispatches the ids they
return after its commit (the outbox rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from interlink.errors import ConflictError, InvalidInputError, NotFoundError
from interlink.ids import new_id
from interlink.manifest import FieldError
from interlink.pipeline.publish import EventIn, PublishRequest, build_rows
from interlink.stats import count_events
from interlink.store import integrations as rows
from interlink.store.bulk import insert_rows
from interlink.store.integrations import NOTIFICATION, Integration, Synchronization
from interlink.store.tables import events, integrations, published_events, sync_runs, synchronizations

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = [
    "EVENT_TYPES",
    "MAX_ENDPOINTS",
    "Endpoint",
    "delete_endpoint",
    "deliveries_failed",
    "get_endpoint",
    "list_endpoints",
    "notify",
    "register_endpoint",
    "rotate_endpoint_secret",
    "status_changed",
    "sync_finished",
]

EVENT_TYPES = ("integration.error", "integration.recovered", "sync.succeeded", "sync.failed", "event.failed")
"""What a tenant can be notified of, in the order the API lists them."""
MAX_ENDPOINTS = 20
"""Endpoints per tenant: the list is answered whole, and every notification goes to each of them."""
MAX_URL_LENGTH = 2000
SERVICE = "custom"
NAME = "Notification webhook"


@dataclass(frozen=True)
class Endpoint:
    """A notification endpoint as the API shows it (its secret is never read back)."""

    id: str
    url: str
    event_types: list[str]
    enabled: bool
    created_at: datetime


def _endpoint(integration: Integration) -> Endpoint:
    return Endpoint(
        id=integration.id,
        url=str(integration.settings.get("url", "")),
        event_types=[s.event_type for s in integration.synchronizations if s.enabled],
        enabled=integration.enabled,
        created_at=integration.created_at,
    )


def _check(url: Any, event_types: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(url, str) or not url.strip():
        errors.append(FieldError("/url", "required", "'url' is required, e.g. \"https://example.com/hooks\""))
    elif len(url) > MAX_URL_LENGTH:
        errors.append(FieldError("/url", "maxLength", f"'url' must be at most {MAX_URL_LENGTH} characters"))
    else:
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in url):
            errors.append(FieldError("/url", "format", "'url' must be an http:// or https:// URL with a host"))
    if not isinstance(event_types, list) or not event_types:
        errors.append(
            FieldError("/eventTypes", "minItems", f"'eventTypes' lists one or more of: {', '.join(EVENT_TYPES)}")
        )
        return errors
    seen: set[str] = set()
    for i, event_type in enumerate(event_types):
        if event_type not in EVENT_TYPES:
            errors.append(
                FieldError(
                    f"/eventTypes/{i}",
                    "enum",
                    f"unknown event type {event_type!r}; one of: {', '.join(EVENT_TYPES)}",
                )
            )
        elif event_type in seen:
            errors.append(FieldError(f"/eventTypes/{i}", "uniqueItems", f"'{event_type}' is listed twice"))
        seen.add(str(event_type))
    return errors


def register_endpoint(
    runtime: Runtime, tenant_id: str, url: str, event_types: Sequence[str] | None = None
) -> tuple[Endpoint, str]:
    """Store a new endpoint for ``event_types`` (``None``: all of :data:`EVENT_TYPES`).

    Returns it with its new signing secret, the only time the secret is shown. Invalid input raises
    :class:`InvalidInputError` naming each field; more than :data:`MAX_ENDPOINTS` raises :class:`ConflictError`.
    """
    from interlink.integrations import new_signing_secret  # here: interlink.integrations imports the runtime

    wanted = list(EVENT_TYPES) if event_types is None else list(event_types)
    errors = _check(url, wanted)
    if errors:
        raise InvalidInputError(errors)
    registered = runtime.registry.get(SERVICE)
    secret_keys = registered.manifest.secret_keys if registered else frozenset()
    secret = new_signing_secret()
    now = datetime.now(UTC)
    endpoint = Integration(
        id=new_id("wh"),
        tenant_id=tenant_id,
        service=SERVICE,
        name=NAME,
        enabled=True,
        settings=runtime.keyring.seal({"url": url}, secret_keys),
        status="connected",
        created_at=now,
        updated_at=now,
        synchronizations=[Synchronization(t, True) for t in wanted],
        signing_secret=runtime.keyring.encrypt(secret),
        kind=NOTIFICATION,
    )
    with runtime.engine.begin() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).where(integrations.c.tenant_id == tenant_id, integrations.c.kind == NOTIFICATION)
        ).scalar_one()
        if count >= MAX_ENDPOINTS:
            raise ConflictError(f"a tenant has at most {MAX_ENDPOINTS} webhooks; delete one first")
        rows.insert_integration(conn, endpoint)
    return _endpoint(endpoint), secret


def list_endpoints(runtime: Runtime, tenant_id: str) -> list[Endpoint]:
    """The tenant's endpoints, oldest first."""
    with runtime.engine.connect() as conn:
        found = rows.list_integrations(conn, tenant_id, kind=NOTIFICATION, limit=MAX_ENDPOINTS * 2)
    return [_endpoint(i) for i in found]


def get_endpoint(runtime: Runtime, tenant_id: str, endpoint_id: str) -> Endpoint:
    with runtime.engine.connect() as conn:
        found = rows.get_integration(conn, tenant_id, endpoint_id, kind=NOTIFICATION)
    if found is None:
        raise NotFoundError(f"webhook '{endpoint_id}' not found")
    return _endpoint(found)


def delete_endpoint(runtime: Runtime, tenant_id: str, endpoint_id: str) -> None:
    """Delete the endpoint, with its deliveries and their logs."""
    with runtime.engine.begin() as conn:
        if not rows.delete_integration(conn, tenant_id, endpoint_id, kind=NOTIFICATION):
            raise NotFoundError(f"webhook '{endpoint_id}' not found")


def rotate_endpoint_secret(runtime: Runtime, tenant_id: str, endpoint_id: str) -> str:
    """A new signing secret, shown once; the old one stops at once (deliveries in flight use the new one)."""
    from interlink.integrations import rotate_signing_secret

    return rotate_signing_secret(runtime, tenant_id, endpoint_id, kind=NOTIFICATION)


# -- Sending notifications --


@dataclass(frozen=True)
class _Notice:
    tenant_id: str
    type: str
    data: dict[str, Any]


def notify(
    runtime: Runtime, conn: sa.Connection | None, tenant_id: str, type: str, data: Mapping[str, Any]
) -> list[str]:
    """Publish a notification of ``type`` to the tenant's endpoints subscribed to it; the delivery ids.

    With ``conn`` the rows go into the caller's transaction, and the caller dispatches the ids after its
    commit (``runtime.pipeline.dispatch``); with ``None`` this commits and dispatches on its own.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown notification type {type!r}")
    return _send(runtime, conn, [_Notice(tenant_id, type, dict(data))])


def _send(runtime: Runtime, conn: sa.Connection | None, notices: list[_Notice]) -> list[str]:
    if conn is None:
        with runtime.engine.begin() as own:
            ids = _write(own, notices)
        runtime.pipeline.dispatch(ids)
        return ids
    return _write(conn, notices)


def _write(conn: sa.Connection, notices: list[_Notice]) -> list[str]:
    if not notices:
        return []
    now = datetime.now(UTC)
    payload_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    for tenant_id in dict.fromkeys(n.tenant_id for n in notices):
        mine = [n for n in notices if n.tenant_id == tenant_id]
        targets = _subscribers(conn, tenant_id, {n.type for n in mine})
        wanted = [EventIn(type=n.type, data=n.data) for n in mine if n.type in targets]
        if wanted:
            build_rows(PublishRequest(tenant_id, wanted, None), {}, targets, now, payload_rows, event_rows)
    insert_rows(conn, published_events, payload_rows)
    insert_rows(conn, events, event_rows)
    count_events(conn, event_rows)
    return [row["id"] for row in event_rows]


def _subscribers(conn: sa.Connection, tenant_id: str, types: set[str]) -> dict[str, list[str]]:
    """Endpoint ids, by event type, of the tenant's enabled endpoints subscribed to that type."""
    found = conn.execute(
        sa.select(integrations.c.id, synchronizations.c.event_type)
        .join(synchronizations, synchronizations.c.integration_id == integrations.c.id)
        .where(
            integrations.c.tenant_id == tenant_id,
            integrations.c.kind == NOTIFICATION,
            integrations.c.enabled.is_(True),
            synchronizations.c.enabled.is_(True),
            synchronizations.c.event_type.in_(types),
        )
        .order_by(integrations.c.id)
    )
    by_type: dict[str, list[str]] = {}
    for endpoint_id, event_type in found:
        by_type.setdefault(event_type, []).append(endpoint_id)
    return by_type


_ABOUT = [
    integrations.c.id,
    integrations.c.tenant_id,
    integrations.c.service,
    integrations.c.name,
    integrations.c.enabled,
    integrations.c.error_message,
]


_FAILED = [
    integrations.c.status,
    events.c.id.label("event_id"),
    events.c.event_type,
    events.c.last_error,
    events.c.attempts,
    events.c.payload_ref,
]


def _about(row: sa.Row[Any], status: str, error_message: str | None) -> dict[str, Any]:
    """The part of every notification's data that says which integration it is about."""
    return {
        "integration_id": row.id,
        "service": row.service,
        "name": row.name,
        "status": status if row.enabled else "disconnected",
        "error_message": error_message,
    }


def _transition(row: sa.Row[Any], old: str, new: str, message: str | None, extra: dict[str, Any]) -> list[_Notice]:
    if new == "error" and old != "error":
        return [_Notice(row.tenant_id, "integration.error", {**_about(row, new, message), **extra})]
    if old == "error" and new == "connected":
        return [_Notice(row.tenant_id, "integration.recovered", {**_about(row, new, None), **extra})]
    return []


def _integration(conn: sa.Connection, integration_id: str) -> sa.Row[Any] | None:
    """The integration a notification is about; ``None`` for a notification endpoint (no loops)."""
    return conn.execute(
        sa.select(*_ABOUT).where(integrations.c.id == integration_id, integrations.c.kind == rows.INTEGRATION)
    ).first()


def status_changed(
    runtime: Runtime,
    conn: sa.Connection | None,
    integration_id: str,
    old: str,
    new: str,
    message: str | None = None,
) -> list[str]:
    """Notify ``integration.error`` (``old`` → ``error``) or ``integration.recovered`` (``error`` → ``connected``).

    Call it in the transaction that writes the new status, and dispatch the returned ids after the commit;
    with ``conn=None`` it commits and dispatches itself. Any other move notifies nothing.
    """
    if old == new or "error" not in (old, new):
        return []
    if conn is None:
        with runtime.engine.connect() as own:
            row = _integration(own, integration_id)
    else:
        row = _integration(conn, integration_id)
    if row is None:
        return []
    return _send(runtime, conn, _transition(row, old, new, message, {}))


def sync_finished(
    runtime: Runtime, conn: sa.Connection, integration_id: str, sync_id: str, outcome: str, error: str | None
) -> list[str]:
    """Notify ``sync.succeeded`` / ``sync.failed``, and the status change the outcome makes; the delivery ids.

    Call it in the transaction that closes the run, *before* the integration's status is written: the
    status before the run (``error`` while an ``error_message`` stands) is read here. So a run that fails
    again notifies ``sync.failed`` only, and the first success after failures ``integration.recovered``.
    """
    if outcome not in ("succeeded", "failed"):
        return []
    row = _integration(conn, integration_id)
    if row is None:
        return []
    records = conn.execute(sa.select(sync_runs.c.records_read).where(sync_runs.c.id == sync_id)).scalar()
    old = "error" if row.error_message is not None else "connected"
    new = "connected" if outcome == "succeeded" else "error"
    extra = {"sync_id": sync_id}
    notices = _transition(row, old, new, error, extra)
    data = {**_about(row, new, error), **extra, "records_read": records or 0}
    notices.append(_Notice(row.tenant_id, f"sync.{outcome}", data))
    return _write(conn, notices)


def deliveries_failed(
    runtime: Runtime, conn: sa.Connection, event_ids: Iterable[str], completed_at: datetime
) -> list[str]:
    """Notify ``event.failed`` for each of ``event_ids`` this worker just moved to ``failed``; the delivery ids.

    Call it in the transaction that wrote the outcomes, with the ``completed_at`` it wrote: an event a
    cancel got to first is not failed, and deliveries to notification endpoints are skipped (no loops).
    """
    ids = list(event_ids)
    if not ids:
        return []
    found = conn.execute(
        sa.select(*_ABOUT, *_FAILED)
        .select_from(events.join(integrations, integrations.c.id == events.c.integration_id))
        .where(
            events.c.id.in_(ids),
            events.c.status == "failed",
            events.c.direction == "outbound",
            events.c.completed_at == completed_at,
            integrations.c.kind == rows.INTEGRATION,
        )
        .order_by(events.c.id)
    ).all()
    notices = [
        _Notice(
            row.tenant_id,
            "event.failed",
            {
                **_about(row, row.status, row.last_error),
                "event_id": row.event_id,
                "event_type": row.event_type,
                "attempts": row.attempts,
                "payload_ref": row.payload_ref,
            },
        )
        for row in found
    ]
    return _write(conn, notices)
