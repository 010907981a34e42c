"""Inbound events: what a source integration received becomes a published event that fans out.

A record from a sync (and a vendor's webhook) is stored once in the payload store with
``source_integration_id`` set, gets one integration event per outbound integration that wants its type
(exactly like a published event, so a Stripe charge can reach Klaviyo), and one ``inbound`` event on the
source integration itself, already ``succeeded``, so it shows in that integration's event log and stats.

A sync hands its records over already serialised (:class:`InboundRecord`): checking that a record is JSON
and storing it is then one serialisation (:func:`interlink.jsontext.dump_json`), not three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from interlink.ids import new_ids
from interlink.jsontext import dump_json
from interlink.pipeline.fanout import fanout_targets
from interlink.pipeline.publish import EventIn, new_event_row, payload_row
from interlink.stats import count_events
from interlink.store.bulk import insert_rows
from interlink.store.tables import events, published_events

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["InboundRecord", "inbound_event_row", "write_inbound", "write_records"]


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One received event, ready to store: its type, its data as JSON text, when it happened (if known)."""

    type: str
    data: str
    occurred_at: datetime | None = None


def write_inbound(
    runtime: Runtime,
    conn: sa.Connection,
    tenant_id: str,
    source_integration_id: str,
    items: Sequence[EventIn],
    now: datetime,
) -> list[str]:
    """Store ``items`` in the caller's transaction; returns the outbound event ids to dispatch after commit."""
    records = [InboundRecord(item.type, dump_json(item.data), item.occurred_at) for item in items]
    return write_records(runtime, conn, tenant_id, source_integration_id, records, now)


def write_records(
    runtime: Runtime,
    conn: sa.Connection,
    tenant_id: str,
    source_integration_id: str,
    records: Sequence[InboundRecord],
    now: datetime,
) -> list[str]:
    """Store ``records`` in the caller's transaction; returns the outbound event ids to dispatch after commit.

    Nothing is sent here: the caller commits first (outbox), then dispatches the ids.
    """
    if not records:
        return []
    targets = fanout_targets(runtime, conn, tenant_id, {r.type for r in records}, source_integration_id)
    payload_ids = new_ids("pub", len(records))
    inbound_ids = new_ids("evt", len(records))
    payload_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    outbound_ids: list[str] = []
    for record, payload_id, inbound_id in zip(records, payload_ids, inbound_ids, strict=True):
        payload_rows.append(
            payload_row(
                payload_id, tenant_id, None, record.type, record.occurred_at, record.data, source_integration_id, now
            )
        )
        event_rows.append(inbound_event_row(inbound_id, tenant_id, source_integration_id, record.type, payload_id, now))
        wanted = targets.get(record.type)
        if wanted:
            for integration_id, event_id in zip(wanted, new_ids("evt", len(wanted)), strict=True):
                outbound_ids.append(event_id)
                event_rows.append(new_event_row(event_id, tenant_id, integration_id, record.type, payload_id, now))
    insert_rows(conn, published_events, payload_rows)
    insert_rows(conn, events, event_rows)
    count_events(conn, event_rows)
    return outbound_ids


def inbound_event_row(
    event_id: str, tenant_id: str, integration_id: str, event_type: str, payload_id: str, now: datetime
) -> dict[str, Any]:
    """An event that records what the source integration received: done on arrival, nothing to deliver."""
    return {
        "id": event_id,
        "tenant_id": tenant_id,
        "integration_id": integration_id,
        "event_type": event_type,
        "direction": "inbound",
        "status": "succeeded",
        "payload_ref": payload_id,
        "attempts": 1,
        "next_attempt_at": None,
        "dispatched_at": None,
        "lease_token": None,
        "lease_expires_at": None,
        "last_error": None,
        "retry_of": None,
        "created_at": now,
        "updated_at": now,
        "completed_at": now,
    }
