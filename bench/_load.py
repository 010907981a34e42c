"""A small HTTP load generator: keep-alive connections on threads, fixed duration, counts answers."""

from __future__ import annotations

import http.client
import threading
import time
from urllib.parse import urlsplit


def hammer(url: str, body: bytes, headers: dict[str, str], *, seconds: float, connections: int) -> tuple[float, int]:
    """POST ``body`` to ``url`` from ``connections`` threads for ``seconds``: (answers per second, errors)."""
    parts = urlsplit(url)
    counts = [0] * connections
    errors = [0] * connections
    stop = time.perf_counter() + seconds

    def run(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
        while time.perf_counter() < stop:
            conn.request("POST", parts.path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if 200 <= response.status < 300:
                counts[i] += 1
            else:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - started), sum(errors)
