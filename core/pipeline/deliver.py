"""The ``deliver`` actor's work: take a batch of queued events, call each connector, record the outcome.

Consistency (see DESIGN.md): rows move ``queued`` → ``processing`` by compare-and-set with a lease token,
and every later write checks that token and that the row is still ``processing``; so a duplicate
message does nothing, and a cancel is never undone by a late worker.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from interlink import notifications
from interlink.connector import Connector
from interlink.http import RecordedExchange
from interlink.pipeline.context import ConnectorCall, connector_call
from interlink.pipeline.failures import classify_failure
from interlink.pipeline.retries import DEFAULT_SCHEDULE, next_delay
from interlink.secrets import SecretKeyError
from interlink.store import integrations as integration_rows
from interlink.store.bulk import insert_rows
from interlink.store.integrations import Integration
from interlink.store.tables import communication_logs, events, integrations, published_events

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["deliver_batch"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Claimed:
    id: str
    tenant_id: str
    integration_id: str
    event_type: str
    payload_ref: str
    attempts: int


@dataclass(frozen=True)
class _Payload:
    data: str
    occurred_at: datetime


@dataclass
class _Outcome:
    event_id: str
    tenant_id: str
    attempt: int
    status: str
    error: str | None = None
    delay: float | None = None
    exchanges: list[RecordedExchange] = field(default_factory=list)
    integration_id: str = ""
    integration_in_error: bool = False
    refused_setting: str | None = None
    """The setting a permanent refusal named (bad credentials): the integration then shows ``error``."""


def deliver_batch(runtime: Runtime, event_ids: list[str]) -> None:
    """Deliver the events of ``event_ids`` that are still queued and due; skip the rest."""
    token = secrets.token_hex(16)
    claimed, integrations_by_id, payloads = _claim(runtime, event_ids, token)
    if not claimed:
        return
    deadline = time.monotonic() + runtime.config.lease_seconds / 2
    outcomes: list[_Outcome] = []
    released: list[str] = []
    for group in _groups(runtime, claimed, integrations_by_id):
        if time.monotonic() > deadline:  # keep well inside the lease: hand the rest back
            released.extend(event.id for event in group)
            continue
        integration = integrations_by_id.get(group[0].integration_id)
        if len(group) > 1 and integration is not None:
            outcomes.extend(_attempt_together(runtime, group, integration, payloads))
        else:
            outcomes.extend(_attempt(runtime, event, integration, payloads) for event in group)
    notices = _record(runtime, outcomes, released, token)
    retries: dict[float, list[str]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.status == "queued" and outcome.delay is not None:
            retries[round(outcome.delay, 3)].append(outcome.event_id)
    for delay, ids in retries.items():
        runtime.pipeline.dispatch(ids, delay=delay)
    if released:
        runtime.pipeline.dispatch(released)
    runtime.pipeline.dispatch(notices)


_CLAIM = (
    events.update()
    .where(
        events.c.id.in_(sa.bindparam("ids", expanding=True)),
        events.c.status == "queued",
        sa.or_(events.c.next_attempt_at.is_(None), events.c.next_attempt_at <= sa.bindparam("due")),
    )
    .values(
        status="processing",
        lease_token=sa.bindparam("token"),
        lease_expires_at=sa.bindparam("until"),
        attempts=events.c.attempts + 1,
        updated_at=sa.bindparam("now"),
    )
    .returning(
        events.c.id,
        events.c.tenant_id,
        events.c.integration_id,
        events.c.event_type,
        events.c.payload_ref,
        events.c.attempts,
    )
)
"""Built once, as the payloads' ``SELECT``: building them cost more than running them, for every batch."""

_PAYLOADS = sa.select(published_events.c.id, published_events.c.data, published_events.c.occurred_at).where(
    published_events.c.id.in_(sa.bindparam("refs", expanding=True))
)


def _claim(
    runtime: Runtime, event_ids: list[str], token: str
) -> tuple[list[_Claimed], dict[str, Integration], dict[str, _Payload]]:
    now = datetime.now(UTC)
    lease_until = now + timedelta(seconds=runtime.config.lease_seconds)
    with runtime.engine.begin() as conn:
        rows = conn.execute(
            _CLAIM,
            {"ids": event_ids, "due": now + timedelta(seconds=1), "token": token, "until": lease_until, "now": now},
        ).all()
        claimed = [_Claimed(*row) for row in rows]
        integration_ids = {c.integration_id for c in claimed}
        by_id = {
            i.id: i
            for i in integration_rows.get_integrations_by_ids(conn, integration_ids, with_synchronizations=False)
        }
        refs = list({c.payload_ref for c in claimed})
        payloads = {row.id: _Payload(row.data, row.occurred_at) for row in conn.execute(_PAYLOADS, {"refs": refs})}
    return claimed, by_id, payloads


def _groups(runtime: Runtime, claimed: list[_Claimed], by_id: dict[str, Integration]) -> list[list[_Claimed]]:
    """The claimed events in order, those of one integration whose connector has a bulk path kept together."""
    groups: list[list[_Claimed]] = []
    together: dict[str, list[_Claimed]] = {}
    for event in claimed:
        integration = by_id.get(event.integration_id)
        registered = runtime.registry.get(integration.service) if integration is not None else None
        bulk = registered is not None and registered.connector_class.deliver_batch is not Connector.deliver_batch
        if not bulk:
            groups.append([event])
        elif event.integration_id in together:
            together[event.integration_id].append(event)
        else:
            together[event.integration_id] = [event]
            groups.append(together[event.integration_id])
    return groups


def _load_data(text: str) -> Any:
    """A stored payload's data. msgspec reads it in a third of ``json``'s time; ``json`` still reads the
    ``NaN`` that payloads stored before data was written with msgspec may hold."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


def _envelope(event: _Claimed, payloads: dict[str, _Payload]) -> dict[str, Any]:
    payload = payloads[event.payload_ref]
    return {
        "id": event.id,
        "type": event.event_type,
        "occurred_at": payload.occurred_at.isoformat().replace("+00:00", "Z"),
        "data": _load_data(payload.data),
        "payload_ref": event.payload_ref,
    }


def _attempt_together(
    runtime: Runtime, group: list[_Claimed], integration: Integration, payloads: dict[str, _Payload]
) -> list[_Outcome]:
    """One ``deliver_batch`` call for the events of one integration; each event keeps its own outcome."""
    registered = runtime.registry.get(integration.service)
    if registered is None or "deliver" not in registered.manifest.capabilities:
        return [_attempt(runtime, event, integration, payloads) for event in group]
    try:
        call = connector_call(runtime, integration, registered)
    except SecretKeyError:
        return [_attempt(runtime, event, integration, payloads) for event in group]
    batch = [(_envelope(event, payloads), event.id) for event in group]
    try:
        results: list[Exception | None] = list(call.connector.deliver_batch(call.context, batch))
    except Exception as exc:  # the whole call failed: each event shares its fate
        results = [exc] * len(group)
    if len(results) != len(group):
        wrong = RuntimeError(f"deliver_batch returned {len(results)} outcomes for {len(group)} events")
        results = [wrong] * len(group)
    exchanges = list(call.client.exchanges)
    outcomes = []
    for event, result in zip(group, results, strict=True):
        outcome = _Outcome(event.id, event.tenant_id, event.attempts, "succeeded")
        _settle(outcome, result, call, integration, event)
        outcome.exchanges = exchanges
        outcomes.append(outcome)
    return outcomes


def _attempt(
    runtime: Runtime, event: _Claimed, integration: Integration | None, payloads: dict[str, _Payload]
) -> _Outcome:
    outcome = _Outcome(event.id, event.tenant_id, event.attempts, "succeeded")
    if integration is None:
        outcome.status, outcome.error = "failed", "the integration no longer exists"
        return outcome
    registered = runtime.registry.get(integration.service)
    if registered is None or "deliver" not in registered.manifest.capabilities:
        outcome.status = "failed"
        outcome.error = f"no installed connector delivers for service '{integration.service}'"
        return outcome
    try:
        call = connector_call(runtime, integration, registered)
    except SecretKeyError as exc:  # retrying cannot help until an operator restores the key
        outcome.status, outcome.error = "failed", str(exc)
        return outcome
    error: Exception | None = None
    try:
        call.connector.deliver(call.context, _envelope(event, payloads), event.id)
    except Exception as exc:
        error = exc
    outcome.exchanges = list(call.client.exchanges)
    _settle(outcome, error, call, integration, event)
    return outcome


def _settle(
    outcome: _Outcome, error: Exception | None, call: ConnectorCall, integration: Integration, event: _Claimed
) -> None:
    """Classify what the connector raised for one event: succeeded, queued for a retry, or failed."""
    retry_after: float | None = None
    outcome.integration_id = integration.id
    outcome.integration_in_error = integration.status == "error"
    if error is not None:
        failure = classify_failure(error)
        outcome.status = "queued" if failure.retryable else "failed"
        outcome.error, retry_after = failure.message, failure.delay
        if failure.kind == "permanent" and failure.setting:
            outcome.refused_setting = failure.setting
        if failure.kind == "not_implemented":
            outcome.error = f"the {integration.service} connector does not implement deliver yet"
    if outcome.error is not None:
        outcome.error = call.redact(outcome.error)[:2000]
    if outcome.status == "queued":
        schedule = integration.retry_schedule or DEFAULT_SCHEDULE
        outcome.delay = next_delay(schedule, event.attempts, retry_after)
        if outcome.delay is None:
            outcome.status = "failed"
            attempts = f"{event.attempts} attempt" + ("s" if event.attempts != 1 else "")
            outcome.error = f"gave up after {attempts}; last error: {outcome.error}"


_OWNED = (events.c.lease_token == sa.bindparam("token"), events.c.status == "processing")
"""Still this worker's: a cancelled event, or one another worker took over, is not written over."""
_SUCCEEDED = (
    events.update()
    .where(events.c.id.in_(sa.bindparam("ids", expanding=True)), *_OWNED)
    .values(
        status="succeeded",
        last_error=None,
        next_attempt_at=None,
        completed_at=sa.bindparam("now"),
        lease_token=None,
        lease_expires_at=None,
        updated_at=sa.bindparam("now"),
    )
)
_ALIVE = sa.select(events.c.id).where(events.c.id.in_(sa.bindparam("ids", expanding=True)))


def _record(runtime: Runtime, outcomes: list[_Outcome], released: list[str], token: str) -> list[str]:
    """Write every outcome in one transaction; successes (the common case) in a single statement.

    Returns the ids of the ``event.failed`` notifications written with them, to dispatch after the commit.
    """
    now = datetime.now(UTC)
    done = {"lease_token": None, "lease_expires_at": None, "updated_at": now}
    succeeded = [o.event_id for o in outcomes if o.status == "succeeded"]
    others = [
        {
            "b_id": o.event_id,
            "b_status": o.status,
            "b_error": o.error,
            "b_next": None if o.delay is None else now + timedelta(seconds=o.delay),
            "b_completed": now if o.status == "failed" else None,
            "token": token,
        }
        for o in outcomes
        if o.status != "succeeded"
    ]
    logs = [
        {"event_id": o.event_id, "tenant_id": o.tenant_id, "attempt": o.attempt, **_log_row(x)}
        for o in outcomes
        for x in o.exchanges
    ]
    with runtime.engine.begin() as conn:
        if succeeded:
            conn.execute(_SUCCEEDED, {"ids": succeeded, "token": token, "now": now})
        if others:
            conn.execute(
                events.update()
                .where(events.c.id == sa.bindparam("b_id"), *_OWNED)
                .values(
                    status=sa.bindparam("b_status"),
                    last_error=sa.bindparam("b_error"),
                    next_attempt_at=sa.bindparam("b_next"),
                    dispatched_at=sa.bindparam("b_next"),
                    completed_at=sa.bindparam("b_completed"),
                    **done,
                ),
                others,
            )
        if released:
            conn.execute(
                events.update()
                .where(events.c.id.in_(released), *_OWNED)
                .values(
                    status="queued", attempts=events.c.attempts - 1, next_attempt_at=now, dispatched_at=now, **done
                ),
                {"token": token},
            )
        if logs:  # an event deleted meanwhile (with its integration) keeps no logs
            alive = set(conn.execute(_ALIVE, {"ids": list({row["event_id"] for row in logs})}).scalars())
            logs = [row for row in logs if row["event_id"] in alive]
        if logs:
            insert_rows(conn, communication_logs, logs)
        failed = [o.event_id for o in outcomes if o.status == "failed"]
        notices = notifications.deliveries_failed(runtime, conn, failed, now)
        return notices + _settle_status(runtime, conn, outcomes)


REFUSED = "Deliveries are refused: "
"""How an integration's ``error_message`` starts when refused deliveries set it, so only they clear it."""


def _settle_status(runtime: Runtime, conn: sa.Connection, outcomes: list[_Outcome]) -> list[str]:
    """A delivery refused for its settings (bad credentials) puts the integration in ``error`` with a message
    naming the setting; a later success clears that error (not one a sync set). Returns notification ids."""
    refused: dict[str, _Outcome] = {}
    delivered: set[str] = set()
    for outcome in outcomes:  # in order: the last word per integration wins
        if outcome.refused_setting and outcome.error:
            refused[outcome.integration_id] = outcome
            delivered.discard(outcome.integration_id)
        elif outcome.status == "succeeded" and outcome.integration_in_error:  # no statement in the usual case
            delivered.add(outcome.integration_id)
            refused.pop(outcome.integration_id, None)
    notices: list[str] = []
    for integration_id, outcome in refused.items():
        hint, error = f"settings.{outcome.refused_setting}", outcome.error or ""
        message = f"{REFUSED}{error}" + ("" if hint in error else f" — update {hint}")
        mine = integrations.c.id == integration_id
        before = conn.execute(sa.select(integrations.c.status).where(mine)).scalar()
        if before not in ("connected", "error"):
            continue  # syncing: the sync's end settles the status
        conn.execute(integrations.update().where(mine).values(status="error", error_message=message))
        if before == "connected":
            notices += notifications.status_changed(runtime, conn, integration_id, "connected", "error", message)
    if delivered:
        recovered = conn.execute(
            integrations.update()
            .where(
                integrations.c.id.in_(delivered),
                integrations.c.status == "error",
                integrations.c.error_message.like(f"{REFUSED}%"),
            )
            .values(status="connected", error_message=None)
            .returning(integrations.c.id)
        ).scalars()
        for integration_id in recovered:
            notices += notifications.status_changed(runtime, conn, integration_id, "error", "connected")
    return notices


def _log_row(exchange: RecordedExchange) -> dict[str, Any]:
    return {
        "started_at": exchange.started_at,
        "duration_ms": exchange.duration_ms,
        "method": exchange.method,
        "url": exchange.url,
        "request_headers": exchange.request_headers,
        "request_body": exchange.request_body,
        "request_body_size": exchange.request_body_size,
        "status_code": exchange.status_code,
        "response_headers": exchange.response_headers,
        "response_body": exchange.response_body,
        "response_body_size": exchange.response_body_size,
        "error": exchange.error,
    }
