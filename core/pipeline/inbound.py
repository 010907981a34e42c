"""Inbound events: what a source integration received becomes a published event that fans out.

A record from a sync (and, later, a vendor's webhook) is stored once in the payload store with
``source_integration_id`` set, gets one integration event per outbound integration that wants its type
(exactly like a published event, so a Stripe charge can reach Klaviyo), and one ``inbound`` event on the
source integration itself, already ``succeeded``, so it shows in that integration's event log and stats.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from interlink.ids import new_id
from interlink.pipeline.publish import EventIn, PublishRequest, build_rows, fanout_targets
from interlink.stats import count_events
from interlink.store.bulk import insert_rows
from interlink.store.tables import events, published_events

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["inbound_event_row", "write_inbound"]


def write_inbound(
    runtime: Runtime,
    conn: sa.Connection,
    tenant_id: str,
    source_integration_id: str,
    items: Sequence[EventIn],
    now: datetime,
) -> list[str]:
    """Store ``items`` in the caller's transaction; returns the outbound event ids to dispatch after commit.

    Nothing is sent here: the caller commits first (outbox), then dispatches the ids.
    """
    if not items:
        return []
    request = PublishRequest(tenant_id, list(items), source_integration_id)
    targets = fanout_targets(runtime, conn, tenant_id, {item.type for item in items}, source_integration_id)
    payload_rows: list[dict[str, Any]] = []
    outbound_rows: list[dict[str, Any]] = []
    published = build_rows(request, {}, targets, now, payload_rows, outbound_rows)
    inbound_rows = [
        inbound_event_row(new_id("evt"), tenant_id, source_integration_id, p.type, p.id, now) for p in published
    ]
    insert_rows(conn, published_events, payload_rows)
    insert_rows(conn, events, inbound_rows + outbound_rows)
    count_events(conn, inbound_rows + outbound_rows)
    return [row["id"] for row in outbound_rows]


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
