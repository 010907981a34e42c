"""The ``sync`` actor's work: run a connector's ``sync`` and make its records durable with its cursor.

Consistency (DESIGN.md, STYLE.md "Syncs and state"): a run moves ``queued`` → ``running`` by
compare-and-set with a lease token, and every later write checks that token, so a duplicate message
does nothing and a run taken over by another worker is left to it. The records yielded before a
checkpoint, the vendor ids that mark them seen (``sync_records``) and the checkpoint's state are
written in one transaction; the next attempt starts from the last state written. Records re-read after
a crash are recognised by their vendor id and not published again: no gap, no duplicate. At most
:data:`BATCH_RECORDS` records are held in memory, however long the sync.
"""

from __future__ import annotations

import contextvars
import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from interlink import notifications
from interlink.jsontext import dump_json
from interlink.manifest import Manifest
from interlink.pipeline.context import ConnectorCall, connector_call
from interlink.pipeline.failures import classify_failure
from interlink.pipeline.inbound import InboundRecord, write_records
from interlink.pipeline.publish import MAX_TYPE_LENGTH, parse_time
from interlink.secrets import SecretKeyError
from interlink.store import integrations as integration_rows
from interlink.store.bulk import insert_rows
from interlink.store.tables import integrations, sync_records, sync_runs

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["BATCH_RECORDS", "RETRY_DELAYS", "run_sync", "settle_status"]

log = logging.getLogger(__name__)

BATCH_RECORDS = 100
"""Records written per transaction when the connector checkpoints less often than that."""
AHEAD = 8
"""Segments the reading thread may hold ready for the store (a page of 100 records each, at most)."""
MERGE_RECORDS = 1000
"""Segments already read when one is written go in the same transaction, up to about this many records.

Why: when the store is slower than the vendor, fewer and larger transactions cost less per record (one
lease check, one commit, fewer pages written twice to the WAL); when the vendor is slower, each segment
is written as soon as it arrives, as before.
"""
RETRY_DELAYS: tuple[float, ...] = (1.0, 3.0)
"""Seconds before the second and third tries of a run that met a transient failure (then it fails)."""
MAX_RETRY_WAIT = 30.0
"""A vendor's ``Retry-After`` is honoured within a run up to this; the next run waits for the rest."""
MAX_RECORD_ID = 200


@dataclass(frozen=True)
class _Run:
    id: str
    tenant_id: str
    integration_id: str
    token: str


class _LeaseLost(Exception):
    """The run is no longer this worker's: taken over after its lease expired, or deleted."""


class _BadOutput(Exception):
    """The connector yielded something the contract does not allow; a bug to report, not to retry."""


@dataclass
class _Segment:
    """What the connector yielded up to a checkpoint (its state in ``checkpoint``), or up to a full batch."""

    records: list[Any]
    checkpoint: Any | None


class _Prefetch:
    """The connector's generator, run in a thread of its own, at most :data:`AHEAD` segments ahead of the store.

    Why: the vendor's next page is fetched while the previous one is written (the HTTP wait and SQLite's
    work release the GIL), instead of one after the other. The generator lives entirely in that thread:
    it is started, advanced and closed there (a generator cannot be closed from another thread while it
    runs), and :meth:`close` returns only once it is closed. Memory stays flat: the thread holds at most
    ``batch`` records of its own plus :data:`AHEAD` segments in the queue. Each record is passed through
    ``convert`` there (checked and serialised): the store's thread, the busier one, is spared that work.
    """

    def __init__(self, items: Iterator[Any], batch: int, convert: Callable[[Any], Any] | None = None) -> None:
        self._items = items
        self._batch = batch
        self._convert = convert
        self._queue: queue.Queue[_Segment | BaseException | None] = queue.Queue(maxsize=AHEAD)
        self._stop = threading.Event()
        self._held: list[BaseException | None] = []  # the end or an error ready() took out of the queue
        run = contextvars.copy_context().run
        self._thread = threading.Thread(target=run, args=(self._produce,), name="sync-reader", daemon=True)
        self._thread.start()

    def next(self) -> _Segment | None:
        """The next segment; ``None`` once the generator is done; what it raised, raised here."""
        value = self._held.pop() if self._held else self._queue.get()
        if isinstance(value, BaseException):
            raise value
        return value

    def ready(self) -> _Segment | None:
        """The next segment if it is already read, else ``None``; the end or an error wait for :meth:`next`."""
        if self._held:
            return None
        try:
            value = self._queue.get_nowait()
        except queue.Empty:
            return None
        if isinstance(value, _Segment):
            return value
        self._held.append(value)
        return None

    def close(self) -> None:
        """Stop reading (an HTTP request under way finishes first) and wait until the generator is closed."""
        self._stop.set()
        self._thread.join()

    def _produce(self) -> None:
        try:
            pending: list[Any] = []
            for item in self._items:
                if isinstance(item, Mapping) and set(item) == {"checkpoint"}:
                    if not self._put(_Segment(pending, item["checkpoint"])):
                        return
                    pending = []
                    continue
                if len(pending) >= self._batch:  # no checkpoint yet: the store writes these without one
                    if not self._put(_Segment(pending, None)):
                        return
                    pending = []
                pending.append(self._convert(item) if self._convert is not None else item)
                if self._stop.is_set():
                    return
            if self._put(_Segment(pending, None)):
                self._put(None)
        except BaseException as exc:  # handed to the store's thread, which decides (retry, fail)
            self._put(exc)
        finally:
            self._close_items()

    def _close_items(self) -> None:
        close = getattr(self._items, "close", None)
        if not callable(close):
            return
        try:
            close()
        except Exception as exc:
            if not self._put(exc):
                log.warning("sync: the connector's generator failed to close: %s", type(exc).__name__)

    def _put(self, value: _Segment | BaseException | None) -> bool:
        """Queue ``value`` unless told to stop meanwhile; whether it was queued."""
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False


def run_sync(runtime: Runtime, run_id: str) -> None:
    """Run the sync ``run_id`` if it is still queued; record how it ended on the run and its integration."""
    run = _claim(runtime, run_id, secrets.token_hex(16))
    if run is None:
        return
    try:
        outcome, error = _execute(runtime, run)
    except _LeaseLost:
        log.info("sync %s: lease lost; another worker or the reaper has it", run.id)
        return
    _finish(runtime, run, outcome, error)


def _claim(runtime: Runtime, run_id: str, token: str) -> _Run | None:
    now = datetime.now(UTC)
    with runtime.engine.begin() as conn:
        row = conn.execute(
            sync_runs.update()
            .where(sync_runs.c.id == run_id, sync_runs.c.status == "queued")
            .values(
                status="running",
                lease_token=token,
                lease_expires_at=now + timedelta(seconds=runtime.config.lease_seconds),
                started_at=sa.func.coalesce(sync_runs.c.started_at, sa.literal(now, sync_runs.c.started_at.type)),
                updated_at=now,
            )
            .returning(sync_runs.c.tenant_id, sync_runs.c.integration_id)
        ).first()
        if row is None:
            return None
        conn.execute(integrations.update().where(integrations.c.id == row.integration_id).values(status="syncing"))
    return _Run(run_id, row.tenant_id, row.integration_id, token)


def _execute(runtime: Runtime, run: _Run) -> tuple[str, str | None]:
    """Run the connector, retrying transient failures a few times; the outcome and the user's message."""
    with runtime.engine.connect() as conn:
        found = integration_rows.get_integrations_by_ids(conn, [run.integration_id], with_synchronizations=False)
        if not found:
            raise _LeaseLost
        state = conn.execute(
            sa.select(integrations.c.sync_state).where(integrations.c.id == run.integration_id)
        ).scalar()
    integration = found[0]
    if not integration.enabled:
        return "cancelled", "the integration was disabled before the sync ran"  # its status is not at fault
    registered = runtime.registry.get(integration.service)
    if registered is None or "sync" not in registered.manifest.capabilities:
        return "failed", f"no installed connector syncs for service '{integration.service}'"
    try:
        call = connector_call(runtime, integration, registered)
    except SecretKeyError as exc:
        return "failed", str(exc)
    tries = 0
    while True:
        tries += 1
        try:
            cancelled = _stream(runtime, run, call, registered.manifest, state if isinstance(state, dict) else {})
            return ("cancelled" if cancelled else "succeeded"), None
        except (_LeaseLost, sa.exc.SQLAlchemyError):
            raise  # the store decides what happens next (the reaper resumes the run)
        except _BadOutput as exc:
            return "failed", f"the {integration.service} connector is faulty: {exc}"
        except Exception as exc:
            failure = classify_failure(exc)
            if failure.kind == "not_implemented":
                return "failed", f"the {integration.service} connector does not implement sync yet"
            if not failure.retryable:
                return "failed", call.redact(failure.message)[:2000]
            message, delay = failure.message, failure.delay
        if tries > len(RETRY_DELAYS):
            return "failed", call.redact(f"{message} (gave up after {tries} tries)")[:2000]
        if _wait(runtime, run, max(RETRY_DELAYS[tries - 1], min(delay or 0.0, MAX_RETRY_WAIT))):
            return "cancelled", None
        with runtime.engine.connect() as conn:  # start again from the last state written
            state = conn.execute(
                sa.select(integrations.c.sync_state).where(integrations.c.id == run.integration_id)
            ).scalar()


def _stream(runtime: Runtime, run: _Run, call: ConnectorCall, manifest: Manifest, state: dict[str, Any]) -> bool:
    """Consume the connector's records; True when a cancel was found at a checkpoint."""
    call.context.state = json.loads(json.dumps(state))  # the connector's own copy
    default_type = _default_type(manifest)
    ahead = _Prefetch(call.connector.sync(call.context), BATCH_RECORDS, lambda item: _record(item, default_type))
    try:
        while (segment := ahead.next()) is not None:
            batch: dict[str, InboundRecord] = {}
            read = 0
            state_written: dict[str, Any] | None = None
            while segment is not None:
                for record_id, record in segment.records:
                    batch.setdefault(record_id, record)
                read += len(segment.records)
                checkpoint = segment.checkpoint
                if checkpoint is not None and not isinstance(checkpoint, Mapping):
                    raise _BadOutput("a checkpoint must be {'checkpoint': {...}} with a JSON object as the state")
                if checkpoint is not None:
                    state_written = _json_object(checkpoint)
                segment = ahead.ready() if read < MERGE_RECORDS else None
            if _commit(runtime, run, call, batch, read, state_written):
                return True
        return False
    finally:
        ahead.close()  # stops the reading thread and closes the connector's generator there


def _commit(
    runtime: Runtime,
    run: _Run,
    call: ConnectorCall,
    batch: dict[str, InboundRecord],
    read: int,
    state: dict[str, Any] | None,
) -> bool:
    """Write the batch's unseen records, the new state and the count in one transaction; True if cancelled."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "records_read": sync_runs.c.records_read + read,
        "lease_expires_at": now + timedelta(seconds=runtime.config.lease_seconds),
        "updated_at": now,
    }
    if state is not None:
        values["state"] = state
    dispatch: list[str] = []
    with runtime.engine.begin() as conn:
        row = conn.execute(
            sync_runs.update()
            .where(sync_runs.c.id == run.id, sync_runs.c.lease_token == run.token, sync_runs.c.status == "running")
            .values(**values)
            .returning(sync_runs.c.cancel_requested)
        ).first()
        if row is None:
            raise _LeaseLost
        unseen = _mark_seen(conn, run.integration_id, list(batch))
        if unseen:
            records = [batch[r] for r in unseen]
            dispatch = write_records(runtime, conn, run.tenant_id, run.integration_id, records, now)
        if state is not None:
            conn.execute(integrations.update().where(integrations.c.id == run.integration_id).values(sync_state=state))
    call.client.clear()  # the exchanges are not kept for syncs; do not let them pile up
    runtime.pipeline.dispatch(dispatch)
    return bool(row.cancel_requested)


_MARK_SEEN_PG = sa.text(
    "INSERT INTO sync_records (integration_id, record_id) SELECT :integration_id, unnest(CAST(:ids AS varchar[]))"
    " ON CONFLICT DO NOTHING RETURNING record_id"
)

_SEEN_SQLITE = sa.text(
    "SELECT record_id FROM sync_records WHERE integration_id = :integration_id"
    " AND record_id IN (SELECT value FROM json_each(:ids))"
)


def _mark_seen(conn: sa.Connection, integration_id: str, record_ids: list[str]) -> list[str]:
    """Insert the vendor ids not yet in ``sync_records``; those it inserted, in the given order.

    On PostgreSQL one ``INSERT ... SELECT unnest(array) ON CONFLICT DO NOTHING RETURNING``, the same
    statement whatever the count (prepared once), instead of a ``SELECT`` then a ``COPY``: a round trip
    less a batch, and an id written meanwhile (a webhook) is skipped instead of failing the transaction.
    On SQLite (no round trips) a ``SELECT`` of the seen ids (handed over as one JSON array: the same
    statement whatever the count, instead of one placeholder per id), then a bulk insert of the others.
    """
    if conn.dialect.name == "postgresql":
        inserted = set(conn.execute(_MARK_SEEN_PG, {"integration_id": integration_id, "ids": record_ids}).scalars())
        return [r for r in record_ids if r in inserted]
    seen = set(conn.execute(_SEEN_SQLITE, {"integration_id": integration_id, "ids": dump_json(record_ids)}).scalars())
    unseen = [r for r in record_ids if r not in seen]
    insert_rows(conn, sync_records, [{"integration_id": integration_id, "record_id": r} for r in unseen])
    return unseen


def _record(item: Any, default_type: str) -> tuple[str, InboundRecord]:
    """A yielded record as an event: the record is the data; ``type`` and ``occurred_at`` are optional."""
    if not isinstance(item, dict) and not isinstance(item, Mapping):  # the ABC check only for the rare non-dict
        raise _BadOutput(f"sync yielded {type(item).__name__}; yield record dicts and checkpoints")
    record_id = item.get("id")
    if (
        isinstance(record_id, bool)
        or not isinstance(record_id, str | int)
        or not 1 <= len(str(record_id)) <= MAX_RECORD_ID
    ):
        raise _BadOutput(f"every record needs an 'id' (a string of 1 to {MAX_RECORD_ID} characters)")
    event_type = item.get("type")
    if not isinstance(event_type, str) or not 1 <= len(event_type) <= MAX_TYPE_LENGTH:
        event_type = default_type
    try:
        data = dump_json(item)  # the check that it is JSON is the serialisation that is stored
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError) as exc:
        raise _BadOutput(f"records and states must be JSON: {exc}") from None
    return str(record_id), InboundRecord(event_type, data, parse_time(item.get("occurred_at")))


def _json_object(value: Mapping[str, Any]) -> dict[str, Any]:
    try:
        result: dict[str, Any] = json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise _BadOutput(f"records and states must be JSON: {exc}") from None
    return result


def _default_type(manifest: Manifest) -> str:
    """The event type of a record that names none: the manifest's first inbound event type."""
    inbound = [e.event_type for e in manifest.sync_events if e.direction == "inbound"]
    return inbound[0] if inbound else f"{manifest.service}.record"


def _wait(runtime: Runtime, run: _Run, seconds: float) -> bool:
    """Sleep before the next try, keeping the lease; True if a cancel was asked meanwhile."""
    deadline = time.monotonic() + seconds
    while True:
        now = datetime.now(UTC)
        with runtime.engine.begin() as conn:
            row = conn.execute(
                sync_runs.update()
                .where(sync_runs.c.id == run.id, sync_runs.c.lease_token == run.token, sync_runs.c.status == "running")
                .values(lease_expires_at=now + timedelta(seconds=runtime.config.lease_seconds), updated_at=now)
                .returning(sync_runs.c.cancel_requested)
            ).first()
        if row is None:
            raise _LeaseLost
        if row.cancel_requested:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, runtime.config.lease_seconds / 3))


def _finish(runtime: Runtime, run: _Run, outcome: str, error: str | None) -> None:
    """Close the run and show the result on the integration: connected, or error with the message."""
    now = datetime.now(UTC)
    with runtime.engine.begin() as conn:
        done = conn.execute(
            sync_runs.update()
            .where(sync_runs.c.id == run.id, sync_runs.c.lease_token == run.token, sync_runs.c.status == "running")
            .values(
                status=outcome,
                error=error,
                finished_at=now,
                lease_token=None,
                lease_expires_at=None,
                updated_at=now,
            )
        ).rowcount
        if not done:
            return
        notices = notifications.sync_finished(runtime, conn, run.integration_id, run.id, outcome, error)
        mine = integrations.c.id == run.integration_id
        if outcome == "succeeded":
            conn.execute(
                integrations.update()
                .where(mine)
                .values(status="connected", last_synced_at=now, error_message=None, sync_failures=0)
            )
        elif outcome == "failed":  # the scheduler waits longer before each retry (growing intervals)
            conn.execute(
                integrations.update()
                .where(mine)
                .values(status="error", error_message=error, sync_failures=integrations.c.sync_failures + 1)
            )
        else:
            settle_status(conn, run.integration_id)
    runtime.pipeline.dispatch(notices)
    log.info("sync %s of %s: %s%s", run.id, run.integration_id, outcome, f" ({error})" if error else "")


def settle_status(conn: sa.Connection, integration_id: str) -> None:
    """After a sync that ended without a verdict (cancelled): ``syncing`` goes back to what it was."""
    conn.execute(
        integrations.update()
        .where(integrations.c.id == integration_id, integrations.c.status == "syncing")
        .values(status=sa.case((integrations.c.error_message.is_(None), "connected"), else_="error"))
    )
