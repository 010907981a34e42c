"""Inbound webhooks, the worker side: parse a stored request into inbound events.

:func:`process_request` takes a ``received`` row by compare-and-set with a lease, calls ``handle_webhook`` on
the request rebuilt from the row (the same ``received_at``), and writes the inbound events, the vendor ids
that mark them seen (``sync_records``, shared with syncs: a vendor event is recorded once however it
arrives) and the row's outcome in one transaction. :func:`reap_hooks` hands lost messages and expired
leases on. The request side is :mod:`interlink.pipeline.hooks`.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from interlink.connector import WebhookRequest, WebhookResult
from interlink.pipeline.context import connector_call
from interlink.pipeline.failures import classify_failure
from interlink.pipeline.hooks import MAX_ATTEMPTS, MAX_ERROR, MAX_EVENT_ID, MAX_RETRY_WAIT, REAP_BATCH, Headers
from interlink.pipeline.inbound import write_inbound
from interlink.pipeline.publish import MAX_TYPE_LENGTH, EventIn, parse_time
from interlink.secrets import SecretKeyError
from interlink.store import integrations as integration_rows
from interlink.store.tables import sync_records, webhook_requests

if TYPE_CHECKING:
    from interlink.runtime import Runtime


__all__ = ["process_request", "reap_hooks"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Claimed:
    id: str
    tenant_id: str
    integration_id: str
    token: str
    attempts: int
    error: str | None
    request: WebhookRequest


class _LeaseLost(Exception):
    """The row is no longer this worker's: the reaper handed it on after the lease expired, or it was deleted."""


class _BadOutput(Exception):
    """``handle_webhook`` returned something the contract does not allow; a bug to report, not to retry."""


def process_request(runtime: Runtime, request_id: str) -> None:
    """Parse the stored request ``request_id`` if it is still ``received``; record how it ended on its row."""
    claimed = _claim(runtime, request_id, secrets.token_hex(16))
    if claimed is None:
        return
    if claimed.attempts > MAX_ATTEMPTS:
        _settle(runtime, claimed, "failed", f"gave up after {MAX_ATTEMPTS} attempts; last error: {claimed.error}")
        return
    outcome, message, delay = _handle(runtime, claimed)
    if outcome == "retry" and claimed.attempts >= MAX_ATTEMPTS:
        outcome, message = "failed", f"gave up after {claimed.attempts} attempts; last error: {message}"
    if outcome in ("failed", "retry"):
        _settle(runtime, claimed, outcome, message, delay)
    log.info("webhook request %s of %s: %s", claimed.id, claimed.integration_id, outcome)


def _claim(runtime: Runtime, request_id: str, token: str) -> _Claimed | None:
    now = datetime.now(UTC)
    with runtime.engine.begin() as conn:
        row = conn.execute(
            webhook_requests.update()
            .where(webhook_requests.c.id == request_id, webhook_requests.c.status == "received")
            .values(
                status="processing",
                lease_token=token,
                lease_expires_at=now + timedelta(seconds=runtime.config.lease_seconds),
                attempts=webhook_requests.c.attempts + 1,
            )
            .returning(
                webhook_requests.c.tenant_id,
                webhook_requests.c.integration_id,
                webhook_requests.c.attempts,
                webhook_requests.c.error,
                webhook_requests.c.method,
                webhook_requests.c.headers,
                webhook_requests.c.body,
                webhook_requests.c.query,
                webhook_requests.c.received_at,
            )
        ).first()
    if row is None:
        return None
    request = WebhookRequest(
        method=row.method,
        path=f"/v1/hooks/{row.integration_id}" + (f"?{row.query}" if row.query else ""),
        headers=Headers(row.headers),
        body=bytes(row.body),
        received_at=row.received_at,
    )
    return _Claimed(request_id, row.tenant_id, row.integration_id, token, row.attempts, row.error, request)


def _handle(runtime: Runtime, claimed: _Claimed) -> tuple[str, str | None, float | None]:
    """Call ``handle_webhook`` and write its events: ``processed``, ``failed`` or ``retry``, a message, a delay."""
    with runtime.engine.connect() as conn:
        found = integration_rows.get_integrations_by_ids(conn, [claimed.integration_id], with_synchronizations=False)
    if not found:
        return "failed", "the integration was deleted", None
    integration = found[0]
    registered = runtime.registry.get(integration.service)
    if registered is None or "handle_webhook" not in registered.manifest.capabilities:
        return "failed", f"no installed connector handles webhooks for service '{integration.service}'", None
    try:
        call = connector_call(runtime, integration, registered)
    except SecretKeyError as exc:
        return "retry", str(exc), None
    try:
        result = call.connector.handle_webhook(call.context, claimed.request)
        items = _events(result, claimed.request.received_at)
    except _BadOutput as exc:
        return "failed", call.redact(f"the {integration.service} connector is faulty: {exc}")[:MAX_ERROR], None
    except Exception as exc:
        failure = classify_failure(exc)
        if failure.kind == "not_implemented":
            return "failed", f"the {integration.service} connector does not implement handle_webhook yet", None
        message = call.redact(failure.message)[:MAX_ERROR]
        return ("retry" if failure.retryable else "failed"), message, failure.delay
    finally:
        call.client.clear()
    try:
        _write(runtime, claimed, items)
    except _LeaseLost:
        return "lost", None, None
    return "processed", None, None


def _events(result: Any, received_at: datetime) -> dict[str, EventIn]:
    """The result's envelopes as events, by vendor id (the first of an id repeated in one request)."""
    if not isinstance(result, WebhookResult):
        raise _BadOutput(f"handle_webhook returned {type(result).__name__}; return a WebhookResult")
    items: dict[str, EventIn] = {}
    for event in result.events:
        if not isinstance(event, Mapping):
            raise _BadOutput("every event must be an envelope dict (interlink.envelope.envelope)")
        event_id, event_type = event.get("id"), event.get("type")
        if isinstance(event_id, bool) or not isinstance(event_id, str | int) or not 1 <= len(str(event_id)) <= 200:
            raise _BadOutput(f"every event needs the vendor's 'id' (a string of 1 to {MAX_EVENT_ID} characters)")
        if not isinstance(event_type, str) or not 1 <= len(event_type) <= MAX_TYPE_LENGTH:
            raise _BadOutput(f"every event needs a 'type' (a string of 1 to {MAX_TYPE_LENGTH} characters)")
        try:
            data = json.loads(json.dumps(event))
        except (TypeError, ValueError) as exc:
            raise _BadOutput(f"events must be JSON: {exc}") from None
        when = parse_time(event.get("occurred_at")) or received_at
        items.setdefault(str(event_id), EventIn(type=event_type, data=data, occurred_at=when))
    return items


def _write(runtime: Runtime, claimed: _Claimed, items: dict[str, EventIn]) -> None:
    """Write the unseen events and the row's outcome in one transaction, then dispatch their deliveries."""
    for attempt in range(3):
        now = datetime.now(UTC)
        try:
            with runtime.engine.begin() as conn:
                unseen = _unseen(conn, claimed.integration_id, list(items))
                done = conn.execute(
                    webhook_requests.update()
                    .where(_held(claimed))
                    .values(
                        status="processed",
                        events_created=len(unseen),
                        error=None,
                        processed_at=now,
                        lease_token=None,
                        lease_expires_at=None,
                    )
                ).rowcount
                if not done:
                    raise _LeaseLost
                dispatch: list[str] = []
                if unseen:
                    rows = [{"integration_id": claimed.integration_id, "record_id": i} for i in unseen]
                    conn.execute(sync_records.insert(), rows)
                    batch = [items[i] for i in unseen]
                    dispatch = write_inbound(runtime, conn, claimed.tenant_id, claimed.integration_id, batch, now)
        except sa.exc.IntegrityError:  # the same vendor id committed meanwhile (a retry, a sync): look again
            if attempt == 2:
                raise
            continue
        runtime.pipeline.dispatch(dispatch)
        return


def _unseen(conn: sa.Connection, integration_id: str, ids: list[str]) -> list[str]:
    seen: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        seen.update(
            conn.execute(
                sa.select(sync_records.c.record_id).where(
                    sync_records.c.integration_id == integration_id, sync_records.c.record_id.in_(chunk)
                )
            ).scalars()
        )
    return [i for i in ids if i not in seen]


def _held(claimed: _Claimed) -> sa.ColumnElement[bool]:
    return sa.and_(
        webhook_requests.c.id == claimed.id,
        webhook_requests.c.lease_token == claimed.token,
        webhook_requests.c.status == "processing",
    )


def _settle(runtime: Runtime, claimed: _Claimed, outcome: str, error: str | None, delay: float | None = None) -> None:
    """``failed`` for good, or back to ``received`` for the reaper to send again (``retry``) after ``delay``."""
    now = datetime.now(UTC)
    free = {"lease_token": None, "lease_expires_at": None, "error": error}
    if outcome == "retry":  # the reaper resends it once dispatched_at is INTERLINK_REDISPATCH_AFTER old
        later = now + timedelta(seconds=min(delay or 0.0, MAX_RETRY_WAIT))
        values: dict[str, Any] = {"status": "received", "dispatched_at": later, **free}
    else:
        values = {"status": "failed", "processed_at": now, **free}
    with runtime.engine.begin() as conn:
        conn.execute(webhook_requests.update().where(_held(claimed)).values(**values))


def reap_hooks(runtime: Runtime, now: datetime | None = None) -> list[str]:
    """Send again ``processing`` rows whose lease expired and ``received`` rows whose message was lost."""
    now = now or datetime.now(UTC)
    stale = now - timedelta(seconds=runtime.config.redispatch_after)
    expired = sa.and_(webhook_requests.c.status == "processing", webhook_requests.c.lease_expires_at < now)
    lost = sa.and_(
        webhook_requests.c.status == "received",
        sa.or_(webhook_requests.c.dispatched_at.is_(None), webhook_requests.c.dispatched_at <= stale),
    )
    with runtime.engine.begin() as conn:
        revived = _take(
            conn,
            expired,
            status="received",
            lease_token=None,
            lease_expires_at=None,
            dispatched_at=now,
            error="the worker was lost mid-way; sent again",
        )
        resent = _take(conn, lost, dispatched_at=now)
    ids = [*revived, *resent]
    if ids:
        log.info("reaper: %d webhook requests after a lost worker, %d lost messages", len(revived), len(resent))
        runtime.pipeline.dispatch_hooks(ids)
    return ids


def _take(conn: sa.Connection, where: sa.ColumnElement[bool], **values: Any) -> list[str]:
    """Up to :data:`REAP_BATCH` rows matching ``where``, each moved by compare-and-set (so one reaper sends it)."""
    ids = conn.execute(sa.select(webhook_requests.c.id).where(where).limit(REAP_BATCH)).scalars().all()
    if not ids:
        return []
    statement = webhook_requests.update().where(webhook_requests.c.id.in_(ids), where).values(**values)
    return list(conn.execute(statement.returning(webhook_requests.c.id)).scalars())
