"""End-to-end delivery throughput against bare Dramatiq, in the same run.

Publishes N events (default 20,000) to one ``custom`` integration that points at a fast local sink, and
times from the first publish to the last ``succeeded`` (once one event has gone through, so that the
worker's start is not counted):

* Redis broker + PostgreSQL + one ``interlink worker`` process of 8 threads;
* the embedded default: SQLite + the in-process worker (8 threads) — reported, not compared.

Then drains N no-op messages through bare Dramatiq with one worker process of 8 threads.
Prints ``delivery_vs_bare_dramatiq=R`` last (R >= 1.0: a real delivery costs less than bare Dramatiq's
per-message overhead).

    .venv/bin/python -m bench.delivery [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import redis
import sqlalchemy as sa
from cryptography.fernet import Fernet

from bench._common import REDIS_URL, fast_sink, fresh_postgres, process, table, wait_until
from bench._noop import COUNTER, declare
from interlink import integrations
from interlink.config import Config
from interlink.pipeline import EventIn, publish
from interlink.runtime import Runtime
from interlink.store.integrations import Synchronization
from interlink.store.tables import events
from interlink.store.tenants import create_tenant

THREADS = 8
PUBLISH_BATCH = 1000


def succeeded(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(events.c.status == "succeeded")).scalar_one())


def run_pipeline(runtime: Runtime, sink_url: str, n: int) -> float:
    """Events per second, first publish to last success."""
    with runtime.engine.begin() as conn:
        tenant, _ = create_tenant(conn, "bench")
    integrations.create_integration(
        runtime,
        tenant.id,
        integrations.NewIntegration(
            service="custom",
            settings={"url": sink_url},
            synchronizations=[Synchronization("order.created", True)],
        ),
    )
    # The clock starts once the worker delivers: one event through first (a fresh `interlink worker` takes
    # seconds to import and start, which is not a delivery's cost; bare Dramatiq's worker gets its start too).
    publish(runtime, tenant.id, [EventIn(type="order.created", data={"warm_up": True})])
    wait_until(lambda: succeeded(runtime) >= 1, timeout=120, interval=0.05)
    started = time.perf_counter()
    for start in range(0, n, PUBLISH_BATCH):
        batch = [
            EventIn(type="order.created", data={"order_id": i, "total": 4200, "currency": "EUR"})
            for i in range(start, min(n, start + PUBLISH_BATCH))
        ]
        publish(runtime, tenant.id, batch)
    wait_until(lambda: succeeded(runtime) >= n + 1, timeout=600, interval=0.1)
    return n / (time.perf_counter() - started)


def redis_postgres(sink_url: str, n: int) -> float:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    with fresh_postgres() as database_url, tempfile.TemporaryDirectory() as data_dir:
        key = Fernet.generate_key().decode()
        config = Config(Path(data_dir), database_url, (key,), REDIS_URL, worker_threads=THREADS)
        runtime = Runtime.start(config)  # the API node: enqueues only
        env = {
            "INTERLINK_DATA_DIR": data_dir,
            "INTERLINK_DATABASE_URL": database_url,
            "INTERLINK_BROKER_URL": REDIS_URL,
            "INTERLINK_SECRET_KEY": key,
            "INTERLINK_WORKER_THREADS": str(THREADS),
        }
        try:
            with process([sys.executable, "-m", "interlink.cli", "worker", "--threads", str(THREADS)], env):
                return run_pipeline(runtime, sink_url, n)
        finally:
            runtime.close()


def embedded(sink_url: str, n: int) -> float:
    with tempfile.TemporaryDirectory() as data_dir:
        config = Config(
            Path(data_dir),
            f"sqlite:///{data_dir}/interlink.db",
            (Fernet.generate_key().decode(),),
            None,
            worker_threads=THREADS,
        )
        runtime = Runtime.start(config)
        runtime.pipeline.start()
        try:
            return run_pipeline(runtime, sink_url, n)
        finally:
            runtime.close()


def bare_dramatiq(n: int) -> float:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    _, actor = declare(REDIS_URL)
    with process([sys.executable, "-m", "bench._noop", REDIS_URL, str(THREADS)]):
        actor.send(-1)  # the clock starts once the worker consumes, as the pipeline's does
        wait_until(lambda: int(client.get(COUNTER) or 0) >= 1, timeout=120, interval=0.02)
        started = time.perf_counter()
        for i in range(n):
            actor.send(i)
        wait_until(lambda: int(client.get(COUNTER) or 0) >= n + 1, timeout=600, interval=0.02)
        return n / (time.perf_counter() - started)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with fast_sink() as sink_url:
        pipeline_rate = redis_postgres(sink_url, n)
        embedded_rate = embedded(sink_url, n)
    bare_rate = bare_dramatiq(n)
    print(
        table(
            [
                ("events", f"{n}"),
                ("Redis + PostgreSQL, 1 worker x 8 threads", f"{pipeline_rate:,.0f} deliveries/s"),
                ("embedded: SQLite + in-process worker", f"{embedded_rate:,.0f} deliveries/s"),
                ("bare Dramatiq no-op, 1 worker x 8 threads", f"{bare_rate:,.0f} messages/s"),
            ]
        )
    )
    print(f"embedded_vs_bare_dramatiq={embedded_rate / bare_rate:.2f}")
    print(f"delivery_vs_bare_dramatiq={pipeline_rate / bare_rate:.2f}")


if __name__ == "__main__":
    main()
