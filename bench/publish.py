"""``POST /v1/events`` throughput, single and batched, against a bare Litestar POST endpoint.

Both servers run the same way (granian, one worker process), at the same time; the same load generator
(16 keep-alive connections) posts a ~1 KB event to one then the other in five alternating slices.
Interlink runs as an API node (PostgreSQL + Redis broker, no worker draining), with one integration
subscribed, so each event is stored, fanned out to one delivery and committed before the 202 (and
enqueued right after).

    .venv/bin/python -m bench.publish [SECONDS]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import httpx
import redis
from cryptography.fernet import Fernet

from bench._common import REDIS_URL, fast_sink, free_port, fresh_postgres, granian_app, process, table, wait_until
from bench._load import hammer

CONNECTIONS = 16
EVENT = {
    "type": "order.created",
    "data": {
        "order_id": "o_1001",
        "items": [
            {"sku": f"sku-{i}", "qty": 1, "price": 1999, "name": "A product with a reasonably long name"}
            for i in range(8)
        ],
        "currency": "EUR",
    },
}
BATCH = 100
SLICES = 5


def up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code in (200, 404)
    except httpx.TransportError:
        return False


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    single = json.dumps(EVENT).encode()
    batch = json.dumps({"events": [EVENT] * BATCH}).encode()
    json_headers = {"content-type": "application/json"}

    redis.Redis.from_url(REDIS_URL).flushdb()
    bare_port = free_port()
    with (
        granian_app("bench._bare_app:app", bare_port),
        fresh_postgres() as database_url,
        tempfile.TemporaryDirectory() as data_dir,
        fast_sink() as sink_url,
    ):
        bare_url = f"http://127.0.0.1:{bare_port}/v1/events"
        wait_until(lambda: up(f"http://127.0.0.1:{bare_port}"), timeout=20)
        env = {
            "INTERLINK_DATA_DIR": data_dir,
            "INTERLINK_DATABASE_URL": database_url,
            "INTERLINK_BROKER_URL": REDIS_URL,
            "INTERLINK_SECRET_KEY": Fernet.generate_key().decode(),
        }
        created = subprocess.run(
            [sys.executable, "-m", "interlink.cli", "tenants", "create", "bench", "--json"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            text=True,
        )
        token = json.loads(created.stdout.strip().splitlines()[-1])["token"]
        auth = {**json_headers, "authorization": f"Bearer {token}"}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with process([sys.executable, "-m", "interlink.cli", "serve", "--port", str(port)], env):
            wait_until(lambda: up(base), timeout=30)
            integration = {
                "service": "custom",
                "settings": {"url": sink_url},
                "synchronizations": [{"eventType": "order.created"}],
            }
            httpx.post(f"{base}/v1/integrations", headers=auth, json=integration).raise_for_status()
            # Both servers are up at once and measured in alternating slices, so that a change in the
            # machine's load (other jobs on two cores) weighs on both figures alike.
            bare_rates, single_rates, bare_errors, single_errors = [], [], 0, 0
            for _ in range(SLICES):
                rate, errors = hammer(bare_url, single, json_headers, seconds=seconds / SLICES, connections=CONNECTIONS)
                bare_rates.append(rate)
                bare_errors += errors
                rate, errors = hammer(
                    f"{base}/v1/events", single, auth, seconds=seconds / SLICES, connections=CONNECTIONS
                )
                single_rates.append(rate)
                single_errors += errors
            bare_rate = sum(bare_rates) / SLICES
            single_rate = sum(single_rates) / SLICES
            batch_rate, batch_errors = hammer(
                f"{base}/v1/events", batch, auth, seconds=seconds, connections=CONNECTIONS
            )
    print(
        table(
            [
                ("load", f"{CONNECTIONS} keep-alive connections, {seconds:.0f} s per server, ~{len(single)} B event"),
                ("bare Litestar POST", f"{bare_rate:,.0f} requests/s ({bare_errors} errors)"),
                ("POST /v1/events, single", f"{single_rate:,.0f} events/s ({single_errors} errors)"),
                (f"POST /v1/events, batches of {BATCH}", f"{batch_rate * BATCH:,.0f} events/s ({batch_errors} errors)"),
            ]
        )
    )
    print(f"publish_batched_vs_bare={batch_rate * BATCH / bare_rate:.2f}")
    print(f"publish_single_vs_bare={single_rate / bare_rate:.2f}")


if __name__ == "__main__":
    main()
