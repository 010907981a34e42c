"""Bare Dramatiq, for the baseline: a no-op actor (it only counts) on a Redis broker.

Run as a worker process: ``python -m bench._noop REDIS_URL THREADS``.
"""

from __future__ import annotations

import signal
import sys
import threading

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

COUNTER = "interlink-bench:noop-count"


def declare(url: str) -> tuple[RedisBroker, dramatiq.Actor]:  # type: ignore[type-arg]
    broker = RedisBroker(url=url)
    counter = redis.Redis.from_url(url)

    def noop(n: int) -> None:
        counter.incr(COUNTER)

    actor = dramatiq.actor(broker=broker, actor_name="noop", queue_name="noop", max_retries=0)(noop)
    return broker, actor


def main() -> None:
    url, threads = sys.argv[1], int(sys.argv[2])
    broker, _ = declare(url)
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.start()
    stop.wait()
    worker.stop()


if __name__ == "__main__":
    main()
