"""A tiny vendor API to sync from: ``GET /records?after=<cursor>``, paginated, behind a Bearer key.

It runs in a thread of the test process; the ``acme_test`` connector of ``tests/packages`` syncs from it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API_KEY = "acme-key-0042"


@dataclass
class Vendor:
    """The records the API serves, its page size, a delay per page, and the requests it answered."""

    records: list[dict[str, object]] = field(default_factory=list)
    page_size: int = 3
    page_delay: float = 0.0
    key: str = API_KEY
    afters: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, count: int) -> None:
        """Append ``count`` records with ids following the last one (``r-0001``, ``r-0002``, ...)."""
        with self.lock:
            start = len(self.records)
            self.records += [{"id": f"r-{i:04d}", "n": i} for i in range(start + 1, start + count + 1)]

    def page(self, after: str | None) -> dict[str, object]:
        with self.lock:
            self.afters.append(after)
            ids = [str(r["id"]) for r in self.records]
            start = ids.index(after) + 1 if after in ids else 0
            chunk = self.records[start : start + self.page_size]
            more = start + self.page_size < len(self.records)
        return {"records": chunk, "next_cursor": chunk[-1]["id"] if chunk else None, "has_more": more}


def _handler(vendor: Vendor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if self.headers.get("Authorization") != f"Bearer {vendor.key}":
                self._send(401, {"error": "invalid api key"})
                return
            if parts.path != "/records":
                self._send(404, {"error": "not found"})
                return
            if vendor.page_delay:
                time.sleep(vendor.page_delay)
            after = parse_qs(parts.query).get("after", [None])[0]
            self._send(200, vendor.page(after))

        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass

    return Handler


@contextmanager
def running_vendor(vendor: Vendor | None = None, port: int = 0) -> Iterator[Vendor]:
    vendor = vendor or Vendor()
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(vendor))
    server.daemon_threads = True
    vendor.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield vendor
    finally:
        server.shutdown()
        server.server_close()
