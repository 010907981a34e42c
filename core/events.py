"""Event monitoring: filter a tenant's integration events, read one with its logs, retry and cancel.

Every query is scoped by tenant: another tenant's event is not found.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from interlink.errors import ConflictError, InvalidInputError, NotFoundError
from interlink.ids import new_id
from interlink.manifest import FieldError
from interlink.pipeline.publish import new_event_row
from interlink.runtime import Runtime
from interlink.stats import count_events
from interlink.store.tables import communication_logs, events, published_events

__all__ = [
    "STATUSES",
    "TERMINAL",
    "EventFilter",
    "cancel_event",
    "filter_events",
    "get_event",
    "get_payload",
    "retry_event",
]

STATUSES = ("queued", "processing", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
CANCELLABLE = ("queued", "processing")

_SUMMARY = [
    events.c.id,
    events.c.integration_id,
    events.c.event_type,
    events.c.direction,
    events.c.status,
    events.c.attempts,
    events.c.next_attempt_at,
    events.c.last_error,
    events.c.retry_of,
    events.c.payload_ref,
    events.c.created_at,
    events.c.updated_at,
    events.c.completed_at,
]


@dataclass(frozen=True)
class EventFilter:
    """The seed's filter request; ``statuses`` empty means every status."""

    integration_id: str | None = None
    statuses: Sequence[str] = ()
    event_type: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    page: int = 1
    limit: int = 50

    def validate(self) -> None:
        errors = [
            FieldError("/status", "enum", f"unknown status '{s}'; one of: {', '.join(STATUSES)}")
            for s in self.statuses
            if s not in STATUSES
        ]
        if self.start and self.end and self.start > self.end:
            errors.append(FieldError("/from", "maximum", "'from' must not be after 'to'"))
        if not 1 <= self.limit <= 500:
            errors.append(FieldError("/limit", "maximum", "'limit' must be between 1 and 500"))
        if self.page < 1:
            errors.append(FieldError("/page", "minimum", "'page' must be at least 1"))
        if errors:
            raise InvalidInputError(errors)


def _summary(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "integration_id": row.integration_id,
        "event_type": row.event_type,
        "direction": row.direction,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at if row.status == "queued" else None,
        "error": row.last_error,
        "retry_of": row.retry_of,
        "payload_ref": row.payload_ref,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "completed_at": row.completed_at,
    }


def filter_events(runtime: Runtime, tenant_id: str, query: EventFilter) -> tuple[list[dict[str, Any]], bool]:
    """A page of events, newest first, and whether more follow."""
    query.validate()
    stmt = sa.select(*_SUMMARY).where(events.c.tenant_id == tenant_id)
    if query.integration_id is not None:
        stmt = stmt.where(events.c.integration_id == query.integration_id)
    if query.statuses:
        stmt = stmt.where(events.c.status.in_(list(query.statuses)))
    if query.event_type is not None:
        stmt = stmt.where(events.c.event_type == query.event_type)
    if query.start is not None:
        stmt = stmt.where(events.c.created_at >= query.start)
    if query.end is not None:
        stmt = stmt.where(events.c.created_at <= query.end)
    stmt = stmt.order_by(events.c.created_at.desc(), events.c.id.desc())
    stmt = stmt.limit(query.limit + 1).offset((query.page - 1) * query.limit)
    with runtime.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [_summary(r) for r in rows[: query.limit]], len(rows) > query.limit


def get_event(runtime: Runtime, tenant_id: str, event_id: str) -> dict[str, Any]:
    """One event with its communication logs, its payload reference and the ids of its retries."""
    with runtime.engine.connect() as conn:
        row = conn.execute(sa.select(*_SUMMARY).where(events.c.id == event_id, events.c.tenant_id == tenant_id)).first()
        if row is None:
            raise NotFoundError(f"event '{event_id}' not found")
        logs = conn.execute(
            sa.select(communication_logs)
            .where(communication_logs.c.event_id == event_id, communication_logs.c.tenant_id == tenant_id)
            .order_by(communication_logs.c.id)
        ).all()
        retries = (
            conn.execute(
                sa.select(events.c.id)
                .where(events.c.retry_of == event_id, events.c.tenant_id == tenant_id)
                .order_by(events.c.id)
            )
            .scalars()
            .all()
        )
    detail = _summary(row)
    detail["retries"] = list(retries)
    detail["communication_logs"] = [
        {
            "attempt": log.attempt,
            "started_at": log.started_at,
            "duration_ms": round(log.duration_ms, 3),
            "request": {
                "method": log.method,
                "url": log.url,
                "headers": log.request_headers,
                "body": log.request_body,
                "body_size": log.request_body_size,
            },
            "response": None
            if log.status_code is None
            else {
                "status_code": log.status_code,
                "headers": log.response_headers,
                "body": log.response_body,
                "body_size": log.response_body_size,
            },
            "error": log.error,
        }
        for log in logs
    ]
    return detail


def get_payload(runtime: Runtime, tenant_id: str, event_id: str) -> dict[str, Any]:
    """The stored payload an event references."""
    with runtime.engine.connect() as conn:
        row = conn.execute(
            sa.select(published_events)
            .join(events, events.c.payload_ref == published_events.c.id)
            .where(events.c.id == event_id, events.c.tenant_id == tenant_id)
        ).first()
    if row is None:
        raise NotFoundError(f"event '{event_id}' not found")
    return {
        "payload_ref": row.id,
        "event_type": row.event_type,
        "external_id": row.external_id,
        "occurred_at": row.occurred_at,
        "size_bytes": row.size_bytes,
        "data": json.loads(row.data),
    }


def retry_event(runtime: Runtime, tenant_id: str, event_id: str) -> dict[str, Any]:
    """A new event, linked to a terminal original by ``retry_of``, queued and sent at once."""
    now = datetime.now(UTC)
    new_event_id = new_id("evt")
    with runtime.engine.begin() as conn:
        row = conn.execute(sa.select(events).where(events.c.id == event_id, events.c.tenant_id == tenant_id)).first()
        if row is None:
            raise NotFoundError(f"event '{event_id}' not found")
        if row.status not in TERMINAL:
            raise ConflictError(f"event '{event_id}' is {row.status}; only a finished event can be retried")
        in_flight = conn.execute(
            sa.select(events.c.id).where(
                events.c.retry_of == event_id, events.c.tenant_id == tenant_id, events.c.status.in_(CANCELLABLE)
            )
        ).scalar()
        if in_flight is not None:
            raise ConflictError(f"a retry of '{event_id}' is still in flight: {in_flight}")
        new_row = new_event_row(
            new_event_id, tenant_id, row.integration_id, row.event_type, row.payload_ref, now, retry_of=event_id
        )
        conn.execute(events.insert().values(new_row))
        count_events(conn, [new_row])
    runtime.pipeline.dispatch([new_event_id])
    return get_event(runtime, tenant_id, new_event_id)


def cancel_event(runtime: Runtime, tenant_id: str, event_id: str) -> dict[str, Any]:
    """Move a queued, waiting or stuck event to ``cancelled``; a worker still holding it cannot undo that."""
    now = datetime.now(UTC)
    with runtime.engine.begin() as conn:
        changed = conn.execute(
            events.update()
            .where(events.c.id == event_id, events.c.tenant_id == tenant_id, events.c.status.in_(CANCELLABLE))
            .values(status="cancelled", completed_at=now, updated_at=now, lease_token=None, lease_expires_at=None)
        ).rowcount
        if not changed:
            status = conn.execute(
                sa.select(events.c.status).where(events.c.id == event_id, events.c.tenant_id == tenant_id)
            ).scalar()
            if status is None:
                raise NotFoundError(f"event '{event_id}' not found")
            raise ConflictError(f"event '{event_id}' is already {status}; it cannot be cancelled")
    return get_event(runtime, tenant_id, event_id)
