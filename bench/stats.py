"""``GET /v1/integrations/{id}`` (with ``sync_stats``) at 10,000,000 events, SQLite and PostgreSQL.

For each backend, in a temporary data directory (SQLite) or a PostgreSQL database made for the run and
dropped after it: one tenant, two ``custom`` integrations, N events (default 10,000,000) on the measured
one and N/10 on its sibling (so the planner's choice of index is a real one), both directions, spread
evenly over the last 60 days, loaded set-based (``generate_series`` on PostgreSQL, a recursive CTE on
SQLite, one million rows per transaction, every index of ``tables.py`` in place), then their hourly
buckets (the migration's backfill query) and ``ANALYZE`` (``VACUUM ANALYZE`` on PostgreSQL).

Then the real server (granian, one worker, the app ``interlink serve`` runs) answers the endpoint over
keep-alive HTTP:

* **counters**: the code as it is (``interlink.stats``: buckets + an index count of the edge hour + an
  index MIN), ``REQUESTS`` requests;
* **COUNT**: the same server with ``sync_stats`` replaced by the old COUNT/MIN over ``events`` (the
  baseline), ``BASELINE_REQUESTS`` requests (each reads every index entry of the integration).

It also checks that the counters' figures equal COUNT/MIN over ``events`` at one instant, and prints the
plan of the stats query. Last, one line per backend: ``stats_p95_ms_<backend>=X`` and the ratio.

    .venv/bin/python -m bench.stats [N]
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography.fernet import Fernet
from litestar import Litestar

from bench._common import ROOT, free_port, fresh_postgres, process, table, wait_until
from interlink import integrations
from interlink.api import create_app
from interlink.config import Config
from interlink.ids import new_id
from interlink.runtime import Runtime
from interlink.stats import integration_stats, stats_query
from interlink.store.integrations import Integration
from interlink.store.tables import events, published_events
from interlink.store.tenants import create_tenant

SPAN = timedelta(days=60)
CHUNK = 1_000_000
REQUESTS = 300
BASELINE_REQUESTS = 20
WARMUP = 10
MODE_VARIABLE = "INTERLINK_BENCH_STATS"


# --- the app the server runs -----------------------------------------------------------------------------


def count_sync_stats(runtime: Runtime, integration: Integration) -> dict[str, Any]:
    """The old ``sync_stats``: COUNT and MIN over the integration's events (the filter index), the baseline."""
    day_ago = datetime.now(UTC) - timedelta(hours=24)
    mine = (events.c.tenant_id == integration.tenant_id, events.c.integration_id == integration.id)
    with runtime.engine.connect() as conn:
        total, earliest = conn.execute(sa.select(sa.func.count(), sa.func.min(events.c.created_at)).where(*mine)).one()
        recent = conn.execute(sa.select(sa.func.count()).where(*mine, events.c.created_at >= day_ago)).scalar_one()
    return {"events_last_24h": recent, "events_total": total, "earliest_event_at": earliest}


def app() -> Litestar:
    """The server's app factory: ``create_app()`` as ``interlink serve`` runs it; the old COUNT when asked."""
    if os.environ.get(MODE_VARIABLE) == "count":
        integrations.sync_stats = count_sync_stats  # public_view looks the function up at each call
    return create_app()


@contextmanager
def server(env: dict[str, str], mode: str) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--workers", "1", "--no-ws", "--factory", "bench.stats:app"]
    base = f"http://127.0.0.1:{port}"
    with process(args, {**env, MODE_VARIABLE: mode, "PYTHONPATH": str(ROOT)}):
        wait_until(lambda: _up(base), timeout=60)
        yield base


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


# --- loading ---------------------------------------------------------------------------------------------

_COLUMNS = "id, tenant_id, integration_id, event_type, direction, status, payload_ref, attempts, created_at, updated_at"
_KIND = """CASE WHEN i % 2 = 0 THEN 'order.created' ELSE 'charge.succeeded' END,
       CASE WHEN i % 2 = 0 THEN 'outbound' ELSE 'inbound' END,
       CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'succeeded' END"""

_POSTGRES_LOAD = f"""
INSERT INTO events ({_COLUMNS})
SELECT 'evt_' || lpad(i::text, 26, '0'), :tenant, :integration, {_KIND}, :payload, 1, t, t
FROM (SELECT i, CAST(:base AS timestamptz) + ((i - :first)::bigint * :step_us) * interval '1 microsecond' AS t
      FROM generate_series(:low, :high) AS i) AS seq
"""

# SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC, no zone).
_SQLITE_LOAD = f"""
WITH RECURSIVE seq(i) AS (SELECT :low UNION ALL SELECT i + 1 FROM seq WHERE i < :high)
INSERT INTO events ({_COLUMNS})
SELECT 'evt_' || printf('%026d', i), :tenant, :integration, {_KIND}, :payload, 1, t, t
FROM (SELECT i, printf('%s.%06d', strftime('%Y-%m-%d %H:%M:%S', :base + ((i - :first) * :step_us) / 1000000,
                                'unixepoch'), ((i - :first) * :step_us) % 1000000) AS t
      FROM seq)
"""

_HOUR = {
    "postgresql": "date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    "sqlite": "strftime('%Y-%m-%d %H:00:00.000000', created_at)",
}
_BUCKETS = (
    "INSERT INTO event_counts (integration_id, hour, tenant_id, count) "
    "SELECT integration_id, {hour}, MIN(tenant_id), COUNT(*) FROM events GROUP BY integration_id, {hour}"
)


@dataclass(frozen=True)
class Dataset:
    tenant_id: str
    integration_id: str
    token: str
    load_seconds: float


def seed(runtime: Runtime, end: datetime) -> tuple[str, str, list[str], str]:
    """The tenant, its token, two ``custom`` integrations (measured, sibling) and one payload for every event."""
    with runtime.engine.begin() as conn:
        tenant, token = create_tenant(conn, "bench-stats")
    new = integrations.NewIntegration(service="custom", settings={"url": "http://127.0.0.1:9/"})
    pair = [integrations.create_integration(runtime, tenant.id, new)[0].id for _ in range(2)]
    data = json.dumps({"order_id": "o_1001", "total": 4200, "currency": "EUR"})
    payload_id: str = new_id("pub")
    with runtime.engine.begin() as conn:
        conn.execute(
            published_events.insert().values(
                id=payload_id,
                tenant_id=tenant.id,
                event_type="order.created",
                occurred_at=end,
                data=data,
                size_bytes=len(data),
                created_at=end,
            )
        )
    return tenant.id, token, pair, payload_id


def load(runtime: Runtime, n: int) -> Dataset:
    """N events on the measured integration and N/10 on its sibling, over the 60 days before now, their
    buckets, then (VACUUM) ANALYZE. The sibling makes the planner's choice of index a real one."""
    end = datetime.now(UTC).replace(microsecond=0)
    base = end - SPAN
    tenant_id, token, (measured, sibling), payload_id = seed(runtime, end)
    dialect = runtime.engine.dialect.name
    statement = sa.text(_POSTGRES_LOAD if dialect == "postgresql" else _SQLITE_LOAD)
    started = time.perf_counter()
    for integration_id, first, count in ((measured, 1, n), (sibling, n + 1, n // 10)):
        params: dict[str, object] = {
            "tenant": tenant_id,
            "integration": integration_id,
            "payload": payload_id,
            "first": first,
            "step_us": int(SPAN.total_seconds() * 1_000_000) // max(count, 1),
            "base": base if dialect == "postgresql" else int(base.timestamp()),
        }
        for low in range(first, first + count, CHUNK):
            high = min(low + CHUNK, first + count) - 1
            with runtime.engine.begin() as conn:
                if dialect == "postgresql":
                    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                else:
                    conn.exec_driver_sql("PRAGMA cache_size = -1000000")  # 1 GB: the indexes stay in memory
                conn.execute(statement, {**params, "low": low, "high": high})
            print(f"  {dialect}: {high - first + 1:,} events on {integration_id}", file=sys.stderr, flush=True)
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql(_BUCKETS.format(hour=_HOUR[dialect]))
    with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if dialect == "postgresql" else "ANALYZE")
    return Dataset(tenant_id, measured, token, time.perf_counter() - started)


# --- measuring -------------------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def timings_ms(call: Callable[[], object], repeats: int) -> list[float]:
    for _ in range(WARMUP if repeats >= REQUESTS else 2):
        call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def endpoint(base: str, data: Dataset, repeats: int) -> tuple[list[float], dict[str, Any]]:
    """Latencies (ms) of ``GET /v1/integrations/{id}`` over one keep-alive connection, and its last stats."""
    url = f"{base}/v1/integrations/{data.integration_id}"
    last: dict[str, Any] = {}
    with httpx.Client(headers={"authorization": f"Bearer {data.token}"}, timeout=120) as client:

        def call() -> None:
            response = client.get(url)
            response.raise_for_status()
            last.update(response.json()["integration"]["sync_stats"])

        samples = timings_ms(call, repeats)
    return samples, last


def same_instant(runtime: Runtime, data: Dataset) -> tuple[dict[str, Any], dict[str, Any]]:
    """The counters' figures and COUNT/MIN over ``events``, both at one instant."""
    now = datetime.now(UTC)
    mine = (events.c.tenant_id == data.tenant_id, events.c.integration_id == data.integration_id)
    with runtime.engine.connect() as conn:
        counters = integration_stats(conn, data.tenant_id, data.integration_id, now).as_dict()
        total, earliest = conn.execute(sa.select(sa.func.count(), sa.func.min(events.c.created_at)).where(*mine)).one()
        recent = conn.execute(
            sa.select(sa.func.count()).where(*mine, events.c.created_at >= now - timedelta(hours=24))
        ).scalar_one()
    if earliest is not None and not isinstance(earliest, datetime):
        earliest = datetime.fromisoformat(str(earliest))
    if earliest is not None and earliest.tzinfo is None:
        earliest = earliest.replace(tzinfo=UTC)
    return counters, {"events_last_24h": recent, "events_total": total, "earliest_event_at": earliest}


def read_stats(runtime: Runtime, data: Dataset) -> None:
    with runtime.engine.connect() as conn:
        integration_stats(conn, data.tenant_id, data.integration_id, datetime.now(UTC))


def plan(runtime: Runtime, data: Dataset) -> list[str]:
    """The lines of the stats query's plan that read ``events``."""
    statement = stats_query(data.tenant_id, data.integration_id, datetime.now(UTC))
    with runtime.engine.connect() as conn:
        sql = str(statement.compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "postgresql":
            lines = [row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}")]
        else:
            lines = [str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
    return [line.strip() for line in lines if " events " in f"{line} " or "events_1" in line]


# --- backends --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    backend: str
    info: list[tuple[str, str]]
    p95_counters: float
    p95_count: float


def run_backend(backend: str, data_dir: str, database_url: str, n: int) -> Result:
    key = Fernet.generate_key().decode()
    runtime = Runtime.start(Config(Path(data_dir), database_url, (key,), None))
    try:
        data = load(runtime, n)
        counters, truth = same_instant(runtime, data)
        plan_lines = plan(runtime, data)
        direct = timings_ms(lambda: read_stats(runtime, data), REQUESTS)
    finally:
        runtime.close()
    env = {"INTERLINK_DATA_DIR": data_dir, "INTERLINK_DATABASE_URL": database_url, "INTERLINK_SECRET_KEY": key}
    with server(env, "counters") as base:
        fast, answer = endpoint(base, data, REQUESTS)
    with server(env, "count") as base:
        slow, _ = endpoint(base, data, BASELINE_REQUESTS)
    info = [
        (f"{backend}: load {n:,} + {n // 10:,} events + buckets + ANALYZE", f"{data.load_seconds:.0f} s"),
        (f"{backend}: figures (counters)", json.dumps(counters, default=str)),
        (f"{backend}: figures (COUNT/MIN, same instant)", json.dumps(truth, default=str)),
        (f"{backend}: equal", "yes" if counters == truth else "NO"),
        (f"{backend}: API answer", json.dumps(answer)),
        *((f"{backend}: plan", line) for line in plan_lines),
        (
            f"{backend}: integration_stats in process ({REQUESTS})",
            f"p50 {percentile(direct, 0.5):7.2f} ms  p95 {percentile(direct, 0.95):7.2f} ms",
        ),
        (
            f"{backend}: GET /v1/integrations/{{id}}, counters ({REQUESTS})",
            f"p50 {percentile(fast, 0.5):7.2f} ms  p95 {percentile(fast, 0.95):7.2f} ms",
        ),
        (
            f"{backend}: GET /v1/integrations/{{id}}, old COUNT ({BASELINE_REQUESTS})",
            f"p50 {percentile(slow, 0.5):7.2f} ms  p95 {percentile(slow, 0.95):7.2f} ms",
        ),
    ]
    return Result(backend, info, percentile(fast, 0.95), percentile(slow, 0.95))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    results = []
    with tempfile.TemporaryDirectory() as data_dir:
        results.append(run_backend("sqlite", data_dir, f"sqlite:///{data_dir}/interlink.db", n))
    with fresh_postgres() as database_url, tempfile.TemporaryDirectory() as data_dir:
        results.append(run_backend("postgresql", data_dir, database_url, n))
    print(table([row for result in results for row in result.info]))
    for result in results:
        print(f"stats_p95_ms_{result.backend}={result.p95_counters:.2f}")
        print(f"stats_count_vs_counters_p95_{result.backend}={result.p95_count / result.p95_counters:.0f}")


if __name__ == "__main__":
    main()
