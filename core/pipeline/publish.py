"""Publish and fan-out: store each event once, and one integration event per integration that wants it.

All of it happens in one transaction; only after the commit are the new ids sent to the broker, so an
accepted event is never lost (if the process dies before sending, the reaper sends them later).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from interlink.errors import InvalidInputError
from interlink.ids import new_id
from interlink.manifest import FieldError
from interlink.store.tables import events, integrations, published_events, synchronizations

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["MAX_BATCH", "EventIn", "Published", "new_event_row", "parse_events", "publish"]

MAX_BATCH = 1000
MAX_TYPE_LENGTH = 200


@dataclass(frozen=True)
class EventIn:
    """A domain event the platform publishes. ``id`` is the platform's own id, used to drop duplicates."""

    type: str
    data: Any = field(default_factory=dict)
    id: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Published:
    """What became of one published event: its id, and the integration events it fanned out to."""

    id: str
    type: str
    external_id: str | None
    duplicate: bool
    deliveries: list[str]


def parse_events(body: Any) -> list[EventIn]:
    """Read ``{"type", "data", "id"?, "occurred_at"?}`` or ``{"events": [...]}``; every error at once."""
    if not isinstance(body, Mapping):
        raise InvalidInputError([FieldError("", "type", "the body must be a JSON object")])
    if "events" in body:
        items = body["events"]
        extra = sorted(set(body) - {"events"})
        if extra:
            raise InvalidInputError(
                [FieldError(f"/{extra[0]}", "additionalProperties", "a batch body holds only 'events'")]
            )
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
            raise InvalidInputError(
                [FieldError("/events", "maxItems", f"'events' must be a list of 1 to {MAX_BATCH} events")]
            )
        parsed = [_parse_one(item, f"/events/{i}") for i, item in enumerate(items)]
    else:
        parsed = [_parse_one(body, "")]
    errors = [e for result in parsed if isinstance(result, list) for e in result]
    if errors:
        raise InvalidInputError(errors)
    return [p for p in parsed if isinstance(p, EventIn)]


def _parse_one(item: Any, pointer: str) -> EventIn | list[FieldError]:
    if not isinstance(item, Mapping):
        return [FieldError(pointer, "type", "an event must be a JSON object")]
    errors: list[FieldError] = []
    extra = sorted(set(item) - {"type", "data", "id", "occurred_at"})
    errors += [FieldError(f"{pointer}/{k}", "additionalProperties", f"'{k}' is not a known field") for k in extra]
    event_type = item.get("type")
    if not isinstance(event_type, str) or not event_type.strip():
        errors.append(FieldError(f"{pointer}/type", "required", "'type' is required, e.g. \"order.created\""))
    elif len(event_type) > MAX_TYPE_LENGTH:
        errors.append(
            FieldError(f"{pointer}/type", "maxLength", f"'type' must be at most {MAX_TYPE_LENGTH} characters")
        )
    external_id = item.get("id")
    if external_id is not None and (not isinstance(external_id, str) or not 1 <= len(external_id) <= 200):
        errors.append(FieldError(f"{pointer}/id", "type", "'id' must be a string of 1 to 200 characters"))
    occurred_at = item.get("occurred_at")
    when: datetime | None = None
    if occurred_at is not None:
        when = _parse_time(occurred_at)
        if when is None:
            errors.append(
                FieldError(
                    f"{pointer}/occurred_at",
                    "format",
                    "'occurred_at' must be an ISO 8601 date-time such as 2025-01-31T23:59:59Z",
                )
            )
    if errors:
        return errors
    return EventIn(type=str(event_type), data=item.get("data", {}), id=external_id, occurred_at=when)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Target:
    integration_id: str
    event_type: str


def _targets(
    runtime: Runtime, conn: sa.Connection, tenant_id: str, types: set[str], exclude: str | None
) -> dict[str, list[str]]:
    """Integration ids, by event type, of the tenant's enabled integrations that deliver that type."""
    rows = conn.execute(
        sa.select(integrations.c.id, integrations.c.service, synchronizations.c.event_type)
        .join(synchronizations, synchronizations.c.integration_id == integrations.c.id)
        .where(
            integrations.c.tenant_id == tenant_id,
            integrations.c.enabled.is_(True),
            synchronizations.c.enabled.is_(True),
            synchronizations.c.event_type.in_(types),
        )
        .order_by(integrations.c.id)
    )
    by_type: dict[str, list[str]] = {}
    for integration_id, service, event_type in rows:
        registered = runtime.registry.get(service)
        if registered is None or integration_id == exclude:
            continue
        if registered.manifest.delivers(event_type):
            by_type.setdefault(event_type, []).append(integration_id)
    return by_type


def publish(
    runtime: Runtime,
    tenant_id: str,
    items: Sequence[EventIn] | EventIn,
    *,
    source_integration_id: str | None = None,
) -> list[Published]:
    """Accept events for a tenant: store, fan out, commit, then dispatch. Duplicates (same ``id``) are dropped."""
    batch = [items] if isinstance(items, EventIn) else list(items)
    for attempt in range(3):
        try:
            results, new_ids = _publish_once(runtime, tenant_id, batch, source_integration_id)
            break
        except sa.exc.IntegrityError:
            if attempt == 2:  # a concurrent publish of the same ids won every race: report as duplicates
                raise
    runtime.pipeline.dispatch(new_ids)
    return results


def _publish_once(
    runtime: Runtime, tenant_id: str, batch: list[EventIn], source_integration_id: str | None
) -> tuple[list[Published], list[str]]:
    now = datetime.now(UTC)
    with runtime.engine.begin() as conn:
        known = _existing(conn, tenant_id, [e.id for e in batch if e.id is not None])
        targets = _targets(runtime, conn, tenant_id, {e.type for e in batch}, source_integration_id)
        payload_rows: list[dict[str, Any]] = []
        event_rows: list[dict[str, Any]] = []
        results: list[Published] = []
        for item in batch:
            if item.id is not None and item.id in known:
                results.append(Published(known[item.id], item.type, item.id, duplicate=True, deliveries=[]))
                continue
            data = json.dumps(item.data, separators=(",", ":"), ensure_ascii=False)
            payload_id = new_id("pub")
            if item.id is not None:
                known[item.id] = payload_id
            payload_rows.append(
                {
                    "id": payload_id,
                    "tenant_id": tenant_id,
                    "external_id": item.id,
                    "event_type": item.type,
                    "occurred_at": item.occurred_at or now,
                    "data": data,
                    "size_bytes": len(data.encode()),
                    "source_integration_id": source_integration_id,
                    "created_at": now,
                }
            )
            deliveries = []
            for integration_id in targets.get(item.type, []):
                event_id = new_id("evt")
                deliveries.append(event_id)
                event_rows.append(new_event_row(event_id, tenant_id, integration_id, item.type, payload_id, now))
            results.append(Published(payload_id, item.type, item.id, duplicate=False, deliveries=deliveries))
        if payload_rows:
            conn.execute(published_events.insert(), payload_rows)
        if event_rows:
            conn.execute(events.insert(), event_rows)
    return results, [row["id"] for row in event_rows]


def new_event_row(
    event_id: str,
    tenant_id: str,
    integration_id: str,
    event_type: str,
    payload_id: str,
    now: datetime,
    *,
    retry_of: str | None = None,
) -> dict[str, Any]:
    return {
        "id": event_id,
        "tenant_id": tenant_id,
        "integration_id": integration_id,
        "event_type": event_type,
        "direction": "outbound",
        "status": "queued",
        "payload_ref": payload_id,
        "attempts": 0,
        "next_attempt_at": now,
        "dispatched_at": now,
        "lease_token": None,
        "lease_expires_at": None,
        "last_error": None,
        "retry_of": retry_of,
        "created_at": now,
        "updated_at": now,
        "completed_at": None,
    }


def _existing(conn: sa.Connection, tenant_id: str, external_ids: Iterable[str]) -> dict[str, str]:
    wanted = list(dict.fromkeys(external_ids))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = conn.execute(
            sa.select(published_events.c.external_id, published_events.c.id).where(
                published_events.c.tenant_id == tenant_id, published_events.c.external_id.in_(chunk)
            )
        )
        found.update({external_id: pub_id for external_id, pub_id in rows})
    return found
