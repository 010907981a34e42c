"""Publish and fan-out: store each event once, and one integration event per integration that wants it.

All of it happens in one transaction; only after the commit are the new ids sent to the broker, so an
accepted event is never lost (if the process dies before sending, the reaper sends them later).
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from interlink.errors import InvalidInputError
from interlink.ids import new_id
from interlink.manifest import FieldError
from interlink.stats import count_events
from interlink.store.bulk import insert_rows
from interlink.store.tables import events, integrations, published_events, synchronizations

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = [
    "MAX_BATCH",
    "Coalescer",
    "EventIn",
    "PublishRequest",
    "Published",
    "build_rows",
    "fanout_targets",
    "new_event_row",
    "parse_events",
    "parse_time",
    "publish",
    "publish_async",
    "write_requests",
]

MAX_BATCH = 1000
COALESCE_BELOW = 100
"""Publishes of fewer events than this share transactions with concurrent ones."""
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
        when = parse_time(occurred_at)
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


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from an ISO 8601 string or a datetime (naive means UTC); ``None`` if it is neither."""
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


def fanout_targets(
    runtime: Runtime, conn: sa.Connection, tenant_id: str, types: set[str], exclude: str | None
) -> dict[str, list[str]]:
    """Integration ids, by event type, of the tenant's enabled integrations that deliver that type."""
    rows = conn.execute(
        sa.select(integrations.c.id, integrations.c.service, synchronizations.c.event_type)
        .join(synchronizations, synchronizations.c.integration_id == integrations.c.id)
        .where(
            integrations.c.tenant_id == tenant_id,
            integrations.c.kind == "integration",  # notification endpoints get only notify()'s events
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


@dataclass(frozen=True)
class PublishRequest:
    tenant_id: str
    batch: list[EventIn]
    source_integration_id: str | None


def publish(
    runtime: Runtime,
    tenant_id: str,
    items: Sequence[EventIn] | EventIn,
    *,
    source_integration_id: str | None = None,
) -> list[Published]:
    """Accept events for a tenant: store, fan out, commit, then dispatch. Duplicates (same ``id``) are dropped.

    Small publishes made at the same time share one transaction (see :class:`Coalescer`); each caller
    still returns only once its own events are committed.
    """
    request = PublishRequest(tenant_id, [items] if isinstance(items, EventIn) else list(items), source_integration_id)
    if len(request.batch) >= COALESCE_BELOW:
        return write_requests(runtime, [request])[0]
    return runtime.pipeline.coalescer.submit(request)


async def publish_async(runtime: Runtime, tenant_id: str, items: Sequence[EventIn]) -> list[Published]:
    """:func:`publish` for an event loop: waits for the commit without holding a thread."""
    return await runtime.pipeline.coalescer.submit_async(PublishRequest(tenant_id, list(items), None))


def write_requests(runtime: Runtime, requests: list[PublishRequest]) -> list[list[Published]]:
    """Store and fan out several publish requests in one transaction, then dispatch their deliveries."""
    for attempt in range(3):
        try:
            results, new_ids = _write(runtime, requests)
            break
        except sa.exc.IntegrityError:
            if attempt == 2:  # a concurrent publish of the same ids won every race
                raise
    runtime.pipeline.dispatch(new_ids)
    return results


def _write(runtime: Runtime, requests: list[PublishRequest]) -> tuple[list[list[Published]], list[str]]:
    now = datetime.now(UTC)
    payload_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    all_results: list[list[Published]] = []
    with runtime.engine.begin() as conn:
        known: dict[str, dict[str, str]] = {}
        for tenant_id in {r.tenant_id for r in requests}:
            ids = [e.id for r in requests if r.tenant_id == tenant_id for e in r.batch if e.id is not None]
            known[tenant_id] = _existing(conn, tenant_id, ids)
        targets_cache: dict[tuple[str, str | None], dict[str, list[str]]] = {}
        for request in requests:
            key = (request.tenant_id, request.source_integration_id)
            if key not in targets_cache:
                types = {e.type for r in requests if (r.tenant_id, r.source_integration_id) == key for e in r.batch}
                targets_cache[key] = fanout_targets(
                    runtime, conn, request.tenant_id, types, request.source_integration_id
                )
            all_results.append(
                build_rows(request, known[request.tenant_id], targets_cache[key], now, payload_rows, event_rows)
            )
        insert_rows(conn, published_events, payload_rows)
        insert_rows(conn, events, event_rows)
        count_events(conn, event_rows)
    return all_results, [row["id"] for row in event_rows]


def build_rows(
    request: PublishRequest,
    known: dict[str, str],
    targets: dict[str, list[str]],
    now: datetime,
    payload_rows: list[dict[str, Any]],
    event_rows: list[dict[str, Any]],
) -> list[Published]:
    """Append one request's rows; ``known`` maps external ids already stored (or earlier in this write)."""
    results: list[Published] = []
    for item in request.batch:
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
                "tenant_id": request.tenant_id,
                "external_id": item.id,
                "event_type": item.type,
                "occurred_at": item.occurred_at or now,
                "data": data,
                "size_bytes": len(data.encode()),
                "source_integration_id": request.source_integration_id,
                "created_at": now,
            }
        )
        deliveries = []
        for integration_id in targets.get(item.type, []):
            event_id = new_id("evt")
            deliveries.append(event_id)
            event_rows.append(new_event_row(event_id, request.tenant_id, integration_id, item.type, payload_id, now))
        results.append(Published(payload_id, item.type, item.id, duplicate=False, deliveries=deliveries))
    return results


Settle = Callable[[list[Published] | None, BaseException | None], None]


class Coalescer:
    """Group commit for small publishes: one writer thread commits what arrived meanwhile in one transaction.

    Why: a transaction costs far more than the rows in it, so sixteen concurrent single-event publishes
    committed together cost about what one does. Each caller waits for the commit of its own events,
    so a 202 still means "stored"; a failure of the shared transaction is retried request by request.
    """

    def __init__(self, runtime: Runtime, max_events: int = 500) -> None:
        self._runtime = runtime
        self._max_events = max_events
        self._queue: queue.SimpleQueue[tuple[PublishRequest, Settle] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, request: PublishRequest) -> list[Published]:
        """Wait (blocking this thread) until the request's events are committed."""
        future: Future[list[Published]] = Future()

        def settle(result: list[Published] | None, error: BaseException | None) -> None:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result or [])

        self._put(request, settle)
        return future.result()

    async def submit_async(self, request: PublishRequest) -> list[Published]:
        """Wait (without a thread) until the request's events are committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Published]] = loop.create_future()

        def deliver(result: list[Published] | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result or [])

        def settle(result: list[Published] | None, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(deliver, result, error)

        self._put(request, settle)
        return await future

    def _put(self, request: PublishRequest, settle: Settle) -> None:
        self._queue.put((request, settle))
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="interlink-publish", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            pending = [first]
            size = len(first[0].batch)
            while size < self._max_events:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this group
                    break
                pending.append(item)
                size += len(item[0].batch)
            self._commit(pending)

    def _commit(self, pending: list[tuple[PublishRequest, Settle]]) -> None:
        try:
            results = write_requests(self._runtime, [request for request, _ in pending])
        except Exception:
            for request, settle in pending:  # isolate the failing request; the others still succeed
                try:
                    result = write_requests(self._runtime, [request])[0]
                except Exception as exc:
                    settle(None, exc)
                else:
                    settle(result, None)
            return
        for (_, settle), result in zip(pending, results, strict=True):
            settle(result, None)

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None


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
