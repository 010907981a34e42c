"""Latency of the event filter query on 1,000,000 events, SQLite and PostgreSQL.

For each backend, loads N events (default 1,000,000) with one set-based INSERT ... SELECT: two tenants,
ten integrations for the measured tenant and two for the other (round-robin), created_at spread over the
last 90 days, statuses ~90% succeeded, 6% failed, 2% queued, 1% processing, 1% cancelled. Then times
``interlink.events.filter_events`` — the API's code path — 200 times per query shape, first and 50th
page (limit 50), newest first:

* a: integration + status=failed + 30-day range (the seed's filter request);
* b: integration + status=succeeded + 30-day range;
* c: integration + status in (failed, cancelled) + 30-day range;
* d: status=failed + 30-day range, every integration.

Prints the load time, each shape's total matches, p50/p95 per shape and page, and last one line per
backend, ``filter_p95_ms_<backend>=X``: the worst p95 over shapes a and b (target: <= 10 ms).

    .venv/bin/python -m bench.filter [N]
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet

from bench._common import fresh_postgres, table
from interlink import integrations
from interlink.config import Config
from interlink.events import EventFilter, filter_events
from interlink.ids import new_id
from interlink.runtime import Runtime
from interlink.store.tables import events, published_events
from interlink.store.tenants import create_tenant

REPEATS = 200
WARMUP = 5
LIMIT = 50
PAGES = (1, 50)
SPAN = timedelta(days=90)
WINDOW = timedelta(days=30)
TARGET_MS = 10.0
MEASURED_INTEGRATIONS = 10
OTHER_INTEGRATIONS = 2
EVENT_TYPES = ("order.created", "order.paid", "subscription.renewed", "refund.issued")


@dataclass(frozen=True)
class Shape:
    key: str
    label: str
    by_integration: bool
    statuses: tuple[str, ...]
    headline: bool
    """Counts toward ``filter_p95_ms_<backend>`` (integration + status + range)."""


SHAPES = (
    Shape("a", "integration + failed + 30d", True, ("failed",), True),
    Shape("b", "integration + succeeded + 30d", True, ("succeeded",), True),
    Shape("c", "integration + failed|cancelled + 30d", True, ("failed", "cancelled"), False),
    Shape("d", "failed + 30d, all integrations", False, ("failed",), False),
)


@dataclass(frozen=True)
class Dataset:
    tenant_id: str
    integration_id: str
    start: datetime
    end: datetime
    load_seconds: float


@dataclass(frozen=True)
class Result:
    backend: str
    shape: Shape
    page: int
    rows: int
    p50: float
    p95: float


# --- loading -------------------------------------------------------------------------------------------

# Row i (1..N): integration i % 12; status and event type from i / 12, so every integration gets the same
# mix; 37 is coprime with 100, which scatters the statuses through time instead of running them in blocks.
_STATUS = """CASE
    WHEN ((i / {k}) * 37) % 100 < 90 THEN 'succeeded'
    WHEN ((i / {k}) * 37) % 100 < 96 THEN 'failed'
    WHEN ((i / {k}) * 37) % 100 < 98 THEN 'queued'
    WHEN ((i / {k}) * 37) % 100 < 99 THEN 'processing'
    ELSE 'cancelled' END"""

_COLUMNS = "id, tenant_id, integration_id, event_type, direction, status, payload_ref, attempts, created_at, updated_at"

_POSTGRES_LOAD = """
INSERT INTO events ({columns})
SELECT 'evt_' || lpad(i::text, 26, '0'), {tenant}, {integration}, {event_type}, 'outbound', {status},
       :payload, 1, t, t
FROM (SELECT i, CAST(:base AS timestamptz) + (i::bigint * :step_us) * interval '1 microsecond' AS t
      FROM generate_series(1, :n) AS i) AS seq
"""

# SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC, no zone) and compares them as text.
_SQLITE_LOAD = """
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n)
INSERT INTO events ({columns})
SELECT 'evt_' || printf('%026d', i), {tenant}, {integration}, {event_type}, 'outbound', {status},
       :payload, 1, t, t
FROM (SELECT i, printf('%s.%06d', strftime('%Y-%m-%d %H:%M:%S', :base + (i * :step_us) / 1000000, 'unixepoch'),
                       (i * :step_us) % 1000000) AS t
      FROM seq)
"""


def _case(expr: str, names: list[str]) -> str:
    whens = " ".join(f"WHEN {k} THEN :{name}" for k, name in enumerate(names))
    return f"CASE {expr} {whens} END"


def load_statement(dialect: str, count: int) -> str:
    template = _POSTGRES_LOAD if dialect == "postgresql" else _SQLITE_LOAD
    return template.format(
        columns=_COLUMNS,
        tenant=_case(f"i % {count}", [f"tnt_{k}" for k in range(count)]),
        integration=_case(f"i % {count}", [f"int_{k}" for k in range(count)]),
        event_type=_case(f"(i / {count}) % {len(EVENT_TYPES)}", [f"type_{k}" for k in range(len(EVENT_TYPES))]),
        status=_STATUS.format(k=count),
    )


def create_integrations(runtime: Runtime) -> tuple[str, list[tuple[str, str]]]:
    """The measured tenant and (tenant, integration) pairs, the measured tenant's first."""
    with runtime.engine.begin() as conn:
        measured, _ = create_tenant(conn, "bench-measured")
        other, _ = create_tenant(conn, "bench-other")
    owners = [measured.id] * MEASURED_INTEGRATIONS + [other.id] * OTHER_INTEGRATIONS
    new = integrations.NewIntegration(service="custom", settings={"url": "http://127.0.0.1:9/"})
    return measured.id, [
        (tenant_id, integrations.create_integration(runtime, tenant_id, new)[0].id) for tenant_id in owners
    ]


def create_payload(runtime: Runtime, tenant_id: str, now: datetime) -> str:
    data = json.dumps({"order_id": "o_1001", "total": 4200, "currency": "EUR"})
    payload_id: str = new_id("pub", now_ms=int(now.timestamp() * 1000))
    with runtime.engine.begin() as conn:
        conn.execute(
            published_events.insert().values(
                id=payload_id,
                tenant_id=tenant_id,
                event_type=EVENT_TYPES[0],
                occurred_at=now,
                data=data,
                size_bytes=len(data),
                created_at=now,
            )
        )
    return payload_id


def load(runtime: Runtime, n: int) -> Dataset:
    """Seed tenants, integrations and a payload, then insert N events in one statement and ANALYZE."""
    end = datetime.now(UTC).replace(microsecond=0)
    base = end - SPAN
    tenant_id, pairs = create_integrations(runtime)
    payload_id = create_payload(runtime, tenant_id, base)
    dialect = runtime.engine.dialect.name
    params: dict[str, object] = {
        "n": n,
        "payload": payload_id,
        "step_us": int(SPAN.total_seconds() * 1_000_000) // n,  # row N lands at (or just before) `end`
        "base": base if dialect == "postgresql" else int(base.timestamp()),
        **{f"tnt_{k}": t for k, (t, _) in enumerate(pairs)},
        **{f"int_{k}": i for k, (_, i) in enumerate(pairs)},
        **{f"type_{k}": t for k, t in enumerate(EVENT_TYPES)},
    }
    started = time.perf_counter()
    with runtime.engine.begin() as conn:
        conn.execute(sa.text(load_statement(dialect, len(pairs))), params)
    with runtime.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    return Dataset(tenant_id, pairs[0][1], end - WINDOW, end, time.perf_counter() - started)


# --- measuring -----------------------------------------------------------------------------------------


def query(data: Dataset, shape: Shape, page: int) -> EventFilter:
    return EventFilter(
        integration_id=data.integration_id if shape.by_integration else None,
        statuses=shape.statuses,
        start=data.start,
        end=data.end,
        page=page,
        limit=LIMIT,
    )


def count_matches(runtime: Runtime, data: Dataset, shape: Shape) -> int:
    where = [
        events.c.tenant_id == data.tenant_id,
        events.c.status.in_(shape.statuses),
        events.c.created_at >= data.start,
        events.c.created_at <= data.end,
    ]
    if shape.by_integration:
        where.append(events.c.integration_id == data.integration_id)
    with runtime.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events).where(*where)).scalar_one())


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def timings_ms(call: Callable[[], object]) -> list[float]:
    for _ in range(WARMUP):
        call()
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def measure(backend: str, runtime: Runtime, data: Dataset, shape: Shape, page: int) -> Result:
    request = query(data, shape, page)
    rows = len(filter_events(runtime, data.tenant_id, request)[0])
    samples = timings_ms(lambda: filter_events(runtime, data.tenant_id, request))
    return Result(backend, shape, page, rows, percentile(samples, 0.50), percentile(samples, 0.95))


# --- backends ------------------------------------------------------------------------------------------


def start_runtime(data_dir: str, database_url: str) -> Runtime:
    config = Config(Path(data_dir), database_url, (Fernet.generate_key().decode(),), None)
    return Runtime.start(config)  # the pipeline worker is not started: nothing is delivered


@contextmanager
def sqlite() -> Iterator[Runtime]:
    with tempfile.TemporaryDirectory() as data_dir:
        runtime = start_runtime(data_dir, f"sqlite:///{data_dir}/interlink.db")
        try:
            yield runtime
        finally:
            runtime.close()


@contextmanager
def postgresql() -> Iterator[Runtime]:
    with fresh_postgres() as database_url, tempfile.TemporaryDirectory() as data_dir:
        runtime = start_runtime(data_dir, database_url)
        try:
            yield runtime
        finally:
            runtime.close()


def run_backend(backend: str, runtime: Runtime, n: int) -> tuple[list[tuple[str, str]], list[Result]]:
    data = load(runtime, n)
    info = [(f"{backend}: load {n:,} events + ANALYZE", f"{data.load_seconds:.1f} s")]
    for shape in SHAPES:
        info.append((f"{backend}: {shape.key}) {shape.label}", f"{count_matches(runtime, data, shape):,} matches"))
    results = [measure(backend, runtime, data, shape, page) for shape in SHAPES for page in PAGES]
    return info, results


def result_rows(results: list[Result]) -> list[tuple[str, str]]:
    return [
        (
            f"{r.backend}  {r.shape.key}) {r.shape.label}  page {r.page}",
            f"p50 {r.p50:6.2f} ms  p95 {r.p95:6.2f} ms  ({r.rows} rows)",
        )
        for r in results
    ]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    info: list[tuple[str, str]] = []
    results: list[Result] = []
    for backend, open_runtime in (("sqlite", sqlite), ("postgresql", postgresql)):
        with open_runtime() as runtime:
            backend_info, backend_results = run_backend(backend, runtime, n)
        info += backend_info
        results += backend_results
    print(table(info))
    print()
    print(f"p50/p95 of filter_events over {REPEATS} runs, limit {LIMIT}, newest first")
    print(table(result_rows(results)))
    for backend in ("sqlite", "postgresql"):
        worst = max(r.p95 for r in results if r.backend == backend and r.shape.headline)
        print(f"filter_p95_ms_{backend}={worst:.2f}")


if __name__ == "__main__":
    main()
