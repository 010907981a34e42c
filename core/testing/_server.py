"""A threaded HTTP server on 127.0.0.1 with a free port, shared by the echo sink and the fault proxy."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class SeenRequest:
    """A request as a test server received it: method, path (with query), lower-case headers, raw body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    fault: str | None = None
    """What the fault proxy answered instead of forwarding (``"HTTP 503"``, ``"reset"``), else ``None``."""

    def text(self) -> str:
        """Everything the request carried, as one string to search."""
        head = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"{self.method} {self.path}\n{head}\n\n{self.body.decode('utf-8', errors='replace')}"


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, every method routed to :meth:`handle_any`, no lines on stderr."""

    protocol_version = "HTTP/1.1"
    wbufsize = -1
    disable_nagle_algorithm = True
    """Buffer each answer and send it at once (TCP_NODELAY): otherwise its last segment can wait for the
    client's delayed ACK under Nagle's algorithm, about 40 ms a request."""

    def handle_any(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def do_GET(self) -> None:
        self.handle_any()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length", 0) or 0))

    def seen(self, body: bytes, fault: str | None = None) -> SeenRequest:
        headers = {k.lower(): v for k, v in self.headers.items()}
        return SeenRequest(self.command, self.path, headers, body, fault)

    def answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class BackgroundServer:
    """Runs ``handler`` on 127.0.0.1 (a free port) in a daemon thread; a context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self.stopping = threading.Event()
        self.started = False

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        host, port = str(self._server.server_address[0]), self._server.server_address[1]
        reachable = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - an address to reach it at
        return f"http://{reachable}:{port}"

    def start(self) -> None:
        if not self.started:
            self.started = True
            self._thread.start()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (``interlink emulate``)."""
        self.started = True
        try:
            self._server.serve_forever(0.2)
        finally:
            self._server.server_close()

    def stop(self) -> None:
        self.stopping.set()
        if self.started:
            self._server.shutdown()
        self._server.server_close()
