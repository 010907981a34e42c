"""Stripe sync throughput and memory, against a plain paging loop over the same emulator, in the same run.

A ``StripeEmulator`` holding N events (default 100,000, one a second up to now) runs in a subprocess of
this script, so that its CPU and memory are not the measured process's. Then, one after the other:

* **plain**: a loop that only pages ``GET /v1/events`` (``limit=100``, the same ``created`` window and
  ``starting_after``) with the same HTTP client the core gives connectors
  (``interlink.http.recording_client``), parsing each page's JSON and nothing else;
* **sync**: a real Stripe sync through the core's path, ``interlink.pipeline.sync.run_sync``, on a runtime
  with SQLite in a temporary directory: every event becomes an envelope, is recorded, published and
  checkpointed page by page;
* **plain** again, then the same sync on a fresh PostgreSQL database (``bench._common.fresh_postgres``;
  skipped with ``--sqlite``), then **plain** a third time. The plain rate is the mean of the plain runs
  (the machine is shared). For each sync, the CPU time of this process per record as well.

Then the peak of Python memory (``tracemalloc``) during a SQLite sync of 10,000 and of N events, each
against its own emulator: it must not grow with the count. Prints ``sync_vs_plain=R`` (SQLite) and
``sync_vs_plain_postgresql=R`` last (target R >= 0.8).

``--latency-ms=L``: the emulator waits L ms before each answer of the measured passes, as a vendor
across a network does (the memory runs are without it).

    .venv/bin/python -m bench.sync [N] [--sqlite] [--latency-ms=L]
"""

from __future__ import annotations

import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from bench._common import free_port, fresh_postgres, process, table, wait_until
from interlink import integrations
from interlink.config import Config
from interlink.http import recording_client
from interlink.pipeline.sync import run_sync
from interlink.runtime import Runtime, freeze_startup_objects
from interlink.store.tenants import create_tenant
from interlink.syncs import get_sync, trigger_sync
from interlink.testing.emulators.stripe import StripeEmulator

TARGET = 0.8
SMALL = 10_000
EVENT_TYPES = ("invoice.paid", "charge.succeeded", "customer.subscription.updated", "payment_intent.succeeded")


def serve(port: int, count: int, latency: float = 0.0) -> None:
    """The emulator subprocess: ``count`` events, one a second, the newest a second ago.

    ``latency`` seconds before each answer, if given, like a vendor on another continent (Stripe answers
    a page of 100 events in a few hundred milliseconds): for the first 20 passes over the events.
    """
    emulator = StripeEmulator(port=port)
    if latency > 0:
        emulator.slow_next(20 * (count // 100 + 2), latency)
    emulator.add_events(count, EVENT_TYPES)
    emulator.serve_forever()


@contextmanager
def emulator(count: int, latency: float = 0.0) -> Iterator[str]:
    """A Stripe emulator with ``count`` events in a subprocess, answering after ``latency`` s; its base URL."""
    port = free_port()
    with process([sys.executable, "-m", "bench.sync", "--serve", str(port), str(count), str(latency)]):
        url = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {StripeEmulator.default_api_key}"}

        def up() -> bool:
            try:
                return httpx.get(url + "/v1/balance", headers=auth).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=60)
        yield url


def plain(url: str) -> tuple[int, float]:
    """Page through every event with the connectors' HTTP client and nothing else: (events, seconds)."""
    now = int(time.time())
    window: dict[str, str | int] = {"limit": 100, "created[gte]": now - 30 * 86_400, "created[lte]": now}
    headers = {"Authorization": f"Bearer {StripeEmulator.default_api_key}"}
    seen, after = 0, None
    started = time.perf_counter()
    with recording_client(secrets=[StripeEmulator.default_api_key]) as client:
        while True:
            params = {**window, "starting_after": after} if after else window
            page = client.get(url + "/v1/events", params=params, headers=headers).json()
            client.clear()  # as the core does at each checkpoint: the exchanges are not kept for syncs
            seen += len(page["data"])
            if not page["has_more"] or not page["data"]:
                return seen, time.perf_counter() - started
            after = page["data"][-1]["id"]


@contextmanager
def sqlite_runtime() -> Iterator[Runtime]:
    with tempfile.TemporaryDirectory() as data_dir:
        config = Config(Path(data_dir), f"sqlite:///{data_dir}/interlink.db", (Fernet.generate_key().decode(),), None)
        runtime = Runtime.start(config)
        try:
            yield runtime
        finally:
            runtime.close()


@contextmanager
def postgresql_runtime() -> Iterator[Runtime]:
    with fresh_postgres() as database_url, tempfile.TemporaryDirectory() as data_dir:
        runtime = Runtime.start(Config(Path(data_dir), database_url, (Fernet.generate_key().decode(),), None))
        try:
            yield runtime
        finally:
            runtime.close()


def core_sync(url: str, *, backend: str = "sqlite", trace: bool = False) -> tuple[int, float, float, int]:
    """One Stripe sync through ``run_sync`` on a fresh runtime: (records, seconds, CPU seconds, peak bytes traced)."""
    with sqlite_runtime() if backend == "sqlite" else postgresql_runtime() as runtime:
        with runtime.engine.begin() as conn:
            tenant, _ = create_tenant(conn, "bench")
        settings = {"apiKey": StripeEmulator.default_api_key, "baseUrl": url}
        new = integrations.NewIntegration(service="stripe", settings=settings)
        integration, _ = integrations.create_integration(runtime, tenant.id, new)
        run_id, _ = trigger_sync(runtime, tenant.id, integration.id)
        freeze_startup_objects()  # as `interlink worker` does once its runtime is up
        if trace:
            tracemalloc.start()
        started, cpu = time.perf_counter(), time.process_time()
        run_sync(runtime, run_id)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        peak = 0
        if trace:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        done = get_sync(runtime, tenant.id, integration.id, run_id)
        if done["status"] != "succeeded":
            raise RuntimeError(f"the sync did not succeed: {done['status']} {done['error']}")
        return int(done["records_read"]), elapsed, cpu, peak


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100_000
    backends = ["sqlite"] if "--sqlite" in sys.argv else ["sqlite", "postgresql"]
    latency = next((float(a.split("=", 1)[1]) / 1000 for a in sys.argv if a.startswith("--latency-ms=")), 0.0)
    freeze_startup_objects()  # what is imported now is the plain loop's start-up too
    plains: list[tuple[int, float]] = []
    syncs: dict[str, tuple[int, float, float, int]] = {}
    with emulator(n, latency) as url:
        plain(url)  # warm the emulator's pages and the connections once
        plains.append(plain(url))
        for backend in backends:
            syncs[backend] = core_sync(url, backend=backend)
            plains.append(plain(url))
    counts = {count for count, _ in plains} | {read for read, *_ in syncs.values()}
    if counts != {n}:
        raise RuntimeError(f"expected {n} events everywhere, read {sorted(counts)}")
    plain_rate = n / (sum(seconds for _, seconds in plains) / len(plains))
    peaks = {}
    for count in (SMALL, n):
        with emulator(count) as url:
            read, _, _, peaks[count] = core_sync(url, trace=True)
        assert read == count
    rows = [
        ("events", f"{n:,}" + (f" (the emulator answers after {latency * 1000:g} ms)" if latency else "")),
        (
            f"plain paging loop (mean of {len(plains)})",
            f"{plain_rate:,.0f} events/s ({', '.join(f'{seconds:.1f} s' for _, seconds in plains)})",
        ),
    ]
    for backend, (_, seconds, cpu, _) in syncs.items():
        rows.append(
            (
                f"core sync, {backend} (run_sync)",
                f"{n / seconds:,.0f} records/s ({seconds:.1f} s; CPU {cpu / n * 1e6:.0f} µs a record)",
            )
        )
    rows += [
        (f"peak traced memory, sync of {SMALL:,}", f"{peaks[SMALL] / 2**20:.1f} MiB"),
        (f"peak traced memory, sync of {n:,}", f"{peaks[n] / 2**20:.1f} MiB"),
    ]
    print(table(rows))
    print(f"sync_peak_growth={peaks[n] / peaks[SMALL]:.2f}")
    for backend, (_, seconds, _, _) in syncs.items():
        suffix = "" if backend == "sqlite" else f"_{backend}"
        print(f"sync_vs_plain{suffix}={n / seconds / plain_rate:.2f}")


if __name__ == "__main__":
    main()
