"""Publish and fan-out: store each event once, and one integration event per integration that wants it.

All of it happens in one transaction; only after the commit are the new ids sent to the broker, so an
accepted event is never lost (if the process dies before sending, the reaper sends them later).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from interlink.errors import InvalidInputError
from interlink.ids import new_id
from interlink.jsontext import dump_json
from interlink.manifest import FieldError
from interlink.pipeline.fanout import TargetCache, TargetRow, fanout_rows, fingerprint, targets_by_type
from interlink.pipeline.publish_loop import LoopWriter
from interlink.pipeline.publish_pg import Guard, insert_published
from interlink.stats import count_events
from interlink.store.bulk import insert_rows
from interlink.store.tables import events, published_events

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = [
    "MAX_BATCH",
    "Coalescer",
    "EventIn",
    "PublishRequest",
    "Published",
    "build_rows",
    "commit_requests",
    "new_event_row",
    "parse_events",
    "parse_time",
    "payload_row",
    "publish",
    "publish_async",
    "write_requests",
]

MAX_BATCH = 1000
COALESCE_BELOW = 100
"""Publishes of fewer events than this share transactions with concurrent ones."""
ONE_STATEMENT_BELOW = 100
"""On PostgreSQL, fewer published events than this go in with one ``INSERT`` (both tables); more, with ``COPY``."""
MAX_TYPE_LENGTH = 200
SEND_EVERY = 0.01
"""Seconds at least between two sends of published ids to the broker while ids keep coming (a send: one
message per 50 ids)."""


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
    results, new_ids = commit_requests(runtime, requests)
    runtime.pipeline.dispatch(new_ids)
    return results


def commit_requests(
    runtime: Runtime,
    requests: list[PublishRequest],
    conn: sa.Connection | None = None,
    cache: TargetCache | None = None,
) -> tuple[list[list[Published]], list[str]]:
    """Store and fan out ``requests`` in one transaction (on ``conn`` if given); the new ids to dispatch.

    Retried when a concurrent publish stored one of the same external ids first (the unique index), and
    when the fan-out taken from ``cache`` turned out stale (then it is read afresh).
    """
    for attempt in range(3):
        try:
            return _write(runtime, requests, conn, cache)
        except _StaleTargets:
            assert cache is not None
            cache.forget()
        except sa.exc.IntegrityError:
            if attempt == 2:  # a concurrent publish of the same ids won every race
                raise
    return _write(runtime, requests, conn)


class _StaleTargets(Exception):
    """The fan-out remembered changed before the group's statement ran: nothing was written."""


def _write(
    runtime: Runtime,
    requests: list[PublishRequest],
    conn: sa.Connection | None = None,
    cache: TargetCache | None = None,
) -> tuple[list[list[Published]], list[str]]:
    now = datetime.now(UTC)
    ids_by_tenant, types_by_key = _keys(requests)
    with runtime.engine.begin() if conn is None else _begin(conn) as tx:
        known = {t: _existing(tx, t, ids) for t, ids in ids_by_tenant.items()}
        one_statement = tx.dialect.name == "postgresql" and _size(requests) < ONE_STATEMENT_BELOW
        remembered = _remembered(cache, types_by_key) if cache is not None and one_statement else None
        guards: list[Guard] = []
        if remembered is None:
            rows = {key: fanout_rows(tx, key[0], types) for key, types in types_by_key.items()}
            if cache is not None:
                for key, types in types_by_key.items():
                    cache.remember(key[0], types, rows[key])
        else:
            rows, guards = remembered
        group = _group_rows(runtime, requests, known, rows, guards, now)
        if one_statement:
            if not insert_published(tx, group.payload_rows, group.event_rows, guards):  # and their counts
                raise _StaleTargets
        else:
            assert tx.get_execution_options().get("isolation_level") != "AUTOCOMMIT", "several statements"
            insert_rows(tx, published_events, group.payload_rows)
            insert_rows(tx, events, group.event_rows)
            count_events(tx, group.event_rows)
    return group.results, group.event_ids


@dataclass
class GroupRows:
    """A group of publish requests as rows to insert, and what each request will be answered."""

    results: list[list[Published]]
    payload_rows: list[dict[str, Any]]
    event_rows: list[dict[str, Any]]
    guards: list[Guard]
    """The fan-out the rows were built from, when it came from memory (see ``fanout.GUARD``)."""

    @property
    def event_ids(self) -> list[str]:
        return [row["id"] for row in self.event_rows]


def rows_from_memory(runtime: Runtime, requests: list[PublishRequest], cache: TargetCache) -> GroupRows | None:
    """The group's rows built from the remembered fan-out, if nothing has to be read first (PostgreSQL).

    ``None`` when something does: an external id (is it a duplicate?), a fan-out not remembered, or a group
    too large for one statement.
    """
    if _size(requests) >= ONE_STATEMENT_BELOW or any(e.id is not None for r in requests for e in r.batch):
        return None
    _, types_by_key = _keys(requests)
    remembered = _remembered(cache, types_by_key)
    if remembered is None:
        return None
    rows, guards = remembered
    known: dict[str, dict[str, str]] = {r.tenant_id: {} for r in requests}
    return _group_rows(runtime, requests, known, rows, guards, datetime.now(UTC))


def _size(requests: list[PublishRequest]) -> int:
    return sum(len(r.batch) for r in requests)


def _keys(
    requests: list[PublishRequest],
) -> tuple[dict[str, list[str]], dict[tuple[str, str | None], set[str]]]:
    """The external ids of each tenant, and the event types of each (tenant, source integration)."""
    ids_by_tenant: dict[str, list[str]] = {}
    types_by_key: dict[tuple[str, str | None], set[str]] = {}
    for request in requests:
        ids = ids_by_tenant.setdefault(request.tenant_id, [])
        ids.extend(e.id for e in request.batch if e.id is not None)
        types_by_key.setdefault((request.tenant_id, request.source_integration_id), set()).update(
            e.type for e in request.batch
        )
    return ids_by_tenant, types_by_key


def _group_rows(
    runtime: Runtime,
    requests: list[PublishRequest],
    known: dict[str, dict[str, str]],
    rows: dict[tuple[str, str | None], list[TargetRow]],
    guards: list[Guard],
    now: datetime,
) -> GroupRows:
    targets = {key: targets_by_type(runtime, found, key[1]) for key, found in rows.items()}
    group = GroupRows([], [], [], guards)
    for r in requests:
        targets_of = targets[(r.tenant_id, r.source_integration_id)]
        group.results.append(build_rows(r, known[r.tenant_id], targets_of, now, group.payload_rows, group.event_rows))
    return group


def _remembered(
    cache: TargetCache, types_by_key: dict[tuple[str, str | None], set[str]]
) -> tuple[dict[tuple[str, str | None], list[TargetRow]], list[Guard]] | None:
    """The fan-out rows of each key from ``cache``, and a guard per tenant; ``None`` if a type is not there.

    Each tenant's rows are read from the cache once, and its guard's fingerprint is made of exactly those
    rows: the cache is shared by the writer thread and the event loops' writers, and may change between
    two reads.
    """
    types_by_tenant: dict[str, set[str]] = {}
    for (tenant_id, _), types in types_by_key.items():
        types_by_tenant.setdefault(tenant_id, set()).update(types)
    found: dict[str, list[TargetRow]] = {}
    for tenant_id, types in types_by_tenant.items():
        tenant_rows = cache.rows(tenant_id, types)
        if tenant_rows is None:
            return None
        found[tenant_id] = tenant_rows
    rows = {key: [row for row in found[key[0]] if row[2] in types] for key, types in types_by_key.items()}
    guards = [(t, sorted(types), fingerprint(found[t])) for t, types in types_by_tenant.items()]
    return rows, guards


@contextlib.contextmanager
def _begin(conn: sa.Connection) -> Iterator[sa.Connection]:
    with conn.begin():
        yield conn


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
        data = dump_json(item.data)
        payload_id = new_id("pub")
        if item.id is not None:
            known[item.id] = payload_id
        payload_rows.append(
            payload_row(
                payload_id,
                request.tenant_id,
                item.id,
                item.type,
                item.occurred_at,
                data,
                request.source_integration_id,
                now,
            )
        )
        deliveries = []
        for integration_id in targets.get(item.type, []):
            event_id = new_id("evt")
            deliveries.append(event_id)
            event_rows.append(new_event_row(event_id, request.tenant_id, integration_id, item.type, payload_id, now))
        results.append(Published(payload_id, item.type, item.id, duplicate=False, deliveries=deliveries))
    return results


@dataclass(frozen=True)
class _Waiter:
    """Where a request's outcome goes: a thread's future, or a future of an event loop."""

    future: Future[list[Published]] | asyncio.Future[list[Published]]
    loop: asyncio.AbstractEventLoop | None = None


Outcome = tuple[_Waiter, list[Published] | None, BaseException | None]


def _resolve(outcomes: list[Outcome]) -> None:
    for waiter, result, error in outcomes:
        if waiter.future.done():  # an awaiting handler was cancelled (client gone)
            continue
        if error is not None:
            waiter.future.set_exception(error)
        else:
            waiter.future.set_result(result or [])


def _settle(outcomes: list[Outcome]) -> None:
    """Hand outcomes to their waiters: one wake-up per event loop, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        loop = outcome[0].loop
        if loop is None:
            _resolve([outcome])
        else:
            by_loop.setdefault(loop, []).append(outcome)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_resolve, items)


class Coalescer:
    """Group commit for small publishes: one writer thread commits what arrived meanwhile in one transaction.

    Why: a transaction costs far more than the rows in it, so sixteen concurrent single-event publishes
    committed together cost about what one does. Each caller waits for the commit of its own events,
    so a 202 still means "stored"; a failure of the shared transaction is retried request by request.
    The committed ids go to the broker from a thread of their own, so that the next group's transaction
    does not wait for the broker's answer (ids committed meanwhile go in the same messages); what a crash
    leaves unsent, the reaper sends. On PostgreSQL, an event loop's publishes are committed by that loop
    (:class:`~interlink.pipeline.publish_loop.LoopWriter`) when their fan-out is remembered; the writer
    thread takes the rest.
    """

    def __init__(self, runtime: Runtime, max_events: int = 500) -> None:
        self._runtime = runtime
        self._max_events = max_events
        self._targets = TargetCache()
        self._queue: queue.SimpleQueue[list[tuple[PublishRequest, _Waiter]] | None] = queue.SimpleQueue()
        self._by_loop: dict[asyncio.AbstractEventLoop, list[tuple[PublishRequest, _Waiter]]] = {}
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn: sa.Connection | None = None
        self._sending: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._loop_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWriter] = (
            weakref.WeakKeyDictionary()
        )

    def submit(self, request: PublishRequest) -> list[Published]:
        """Wait (blocking this thread) until the request's events are committed."""
        future: Future[list[Published]] = Future()
        self._put([(request, _Waiter(future))])
        return future.result()

    async def submit_async(self, request: PublishRequest) -> list[Published]:
        """Wait (without a thread) until the request's events are committed.

        On PostgreSQL the event loop commits the group itself (:class:`LoopWriter`). Otherwise, what an
        event loop submits in one pass over its ready callbacks reaches the writer thread at once, after
        that pass: the writer wakes once for those requests and commits them together, instead of starting
        a group with the first while the loop is still reading the others.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Published]] = loop.create_future()
        waiter = _Waiter(future, loop)
        if self._runtime.engine.dialect.name == "postgresql":
            writer = self._loop_writers.get(loop)
            if writer is None:
                writer = self._loop_writers[loop] = self._loop_writer(loop)
            writer.submit(request, waiter)
        else:
            waiting = self._by_loop.get(loop)
            if waiting is None:
                waiting = self._by_loop[loop] = []
                loop.call_soon(self._hand_over, loop)
            waiting.append((request, waiter))
        return await future

    def _loop_writer(self, loop: asyncio.AbstractEventLoop) -> LoopWriter:
        """A writer for a loop seen for the first time; the connections of loops closed since are closed.

        Why: an application may run a loop per task (``asyncio.run``); each would otherwise keep its
        connection until the garbage collector finds the loop (then ``weakref.finalize`` closes it).
        """
        for old_loop, old_writer in list(self._loop_writers.items()):
            if old_loop.is_closed():
                old_writer.close()
                self._loop_writers.pop(old_loop, None)
        url = self._runtime.engine.url.set(drivername="postgresql")
        writer = LoopWriter(
            conninfo=url.render_as_string(hide_password=False),
            prepare=functools.partial(rows_from_memory, self._runtime, cache=self._targets),
            fall_back=self._put,
            dispatch=self._send_later,
            forget_targets=self._targets.forget,
        )
        weakref.finalize(loop, writer.close)
        return writer

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._put(self._by_loop.pop(loop))

    def _put(self, requests: list[tuple[PublishRequest, _Waiter]]) -> None:
        """Queue a group for the writer thread."""
        self._start_threads()
        self._queue.put(requests)

    def _send_later(self, ids: list[str]) -> None:
        """Hand committed ids to the sender thread."""
        self._start_threads()
        self._sending.put(ids)

    def _start_threads(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._sender = threading.Thread(target=self._send, name="interlink-publish-send", daemon=True)
                    self._sender.start()
                    self._thread = threading.Thread(target=self._run, name="interlink-publish", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._drop_connection()
                self._sending.put(None)  # the sender sends what is queued, then stops
                return
            pending = first
            size = sum(len(request.batch) for request, _ in first)
            while size < self._max_events:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this group
                    break
                pending += more
                size += sum(len(request.batch) for request, _ in more)
            self._commit(pending, self._connection_for(size))

    def _commit(self, pending: list[tuple[PublishRequest, _Waiter]], conn: sa.Connection | None) -> None:
        """Commit the group, answer its callers, then dispatch (the reaper sends what a crash left behind)."""
        try:
            cache = self._targets if conn is not None and conn.dialect.name == "postgresql" else None
            results, new_ids = commit_requests(self._runtime, [request for request, _ in pending], conn, cache)
        except Exception:
            self._drop_connection()  # it may be what failed; the next group starts on a fresh one
            outcomes: list[Outcome] = []
            new_ids = []
            for request, waiter in pending:  # isolate the failing request; the others still succeed
                try:
                    result, ids = commit_requests(self._runtime, [request])
                except Exception as exc:
                    outcomes.append((waiter, None, exc))
                else:
                    outcomes.append((waiter, result[0], None))
                    new_ids += ids
        else:
            outcomes = [(waiter, result, None) for (_, waiter), result in zip(pending, results, strict=True)]
        _settle(outcomes)
        if new_ids:
            self._sending.put(new_ids)

    def _send(self) -> None:
        """Send committed ids to the broker: all those waiting at once, in as few messages as they fill.

        Under load it sends at most once per :data:`SEND_EVERY`, sleeping meanwhile (the writer's hand-offs
        do not wake it): a message costs the same CPU for three ids as for fifty. After a quiet spell the
        ids go at once.
        """
        last_sent = 0.0
        while True:
            ids = self._sending.get()
            stop = ids is None
            waiting = list(ids or [])
            if not stop and (wait := last_sent + SEND_EVERY - time.monotonic()) > 0:
                time.sleep(wait)
            while not stop:
                try:
                    more = self._sending.get_nowait()
                except queue.Empty:
                    break
                stop = more is None
                waiting += more or []
            if waiting:
                self._runtime.pipeline.dispatch(waiting)
                last_sent = time.monotonic()
            if stop:
                return

    def _connection_for(self, size: int) -> sa.Connection | None:
        """The writer's own connection, kept between groups: no pool check-out and no ping per group.

        On PostgreSQL it is in autocommit mode, and only for groups that go in with one ``INSERT``
        (:mod:`interlink.pipeline.publish_pg`): that statement is atomic on its own, and the reads before it
        (targets, known ids) see what is committed when they run, as they would in a transaction at
        PostgreSQL's READ COMMITTED; without ``BEGIN`` and ``COMMIT`` a group costs two round trips, not
        four. Larger groups (``COPY`` of both tables) take a transaction on a pooled connection (``None``).
        """
        postgres = self._runtime.engine.dialect.name == "postgresql"
        if postgres and size >= ONE_STATEMENT_BELOW:
            return None
        if self._conn is None:
            conn = self._runtime.engine.connect()
            self._conn = conn.execution_options(isolation_level="AUTOCOMMIT") if postgres else conn
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def stop(self) -> None:
        """Finish the groups queued, send their ids, and stop both threads; close the loops' connections."""
        for writer in list(self._loop_writers.values()):
            writer.close()
        self._loop_writers.clear()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None
        if self._sender is not None:
            self._sender.join(timeout=10)
            self._sender = None


def payload_row(
    payload_id: str,
    tenant_id: str,
    external_id: str | None,
    event_type: str,
    occurred_at: datetime | None,
    data: str,
    source_integration_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """A row of the payload store: the event's data (JSON text) stored once, whoever delivers it."""
    return {
        "id": payload_id,
        "tenant_id": tenant_id,
        "external_id": external_id,
        "event_type": event_type,
        "occurred_at": occurred_at or now,
        "data": data,
        "size_bytes": len(data.encode()),
        "source_integration_id": source_integration_id,
        "created_at": now,
    }


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


_EXISTING = sa.select(published_events.c.external_id, published_events.c.id).where(
    published_events.c.tenant_id == sa.bindparam("tenant_id"),
    published_events.c.external_id.in_(sa.bindparam("ids", expanding=True)),
)


def _existing(conn: sa.Connection, tenant_id: str, external_ids: Iterable[str]) -> dict[str, str]:
    wanted = list(dict.fromkeys(external_ids))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        rows = conn.execute(_EXISTING, {"tenant_id": tenant_id, "ids": wanted[start : start + 500]})
        found.update({external_id: pub_id for external_id, pub_id in rows})
    return found
