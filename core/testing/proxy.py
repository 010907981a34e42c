"""``FaultProxy``: a local HTTP proxy in front of a vendor emulator that injects faults on demand.

Point a connector at :attr:`FaultProxy.url` through its base-URL setting. By default every request is
forwarded to the upstream (the author's emulator) and its answer relayed; a scripted :class:`Fault`
answers instead, on the next N requests or on requests whose path matches:

* ``Fault.respond(503)``, ``Fault.respond(429, retry_after=7)``: an HTTP error;
* ``Fault.hang(seconds)``: hold the request past the client's read timeout, then close without answering;
* ``Fault.slow(seconds)``: wait, then forward (a slow vendor that still answers);
* ``Fault.reset()``: close the connection at once without answering (a TCP reset).

Every request is kept in :attr:`FaultProxy.requests` with the fault it got, if any.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import struct
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from interlink.testing._server import BackgroundServer, QuietHandler, SeenRequest

__all__ = ["Fault", "FaultProxy", "SeenRequest"]

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host"}
)


@dataclass(frozen=True)
class Fault:
    """What the proxy does instead of (or before) forwarding a request. Build one with the class methods."""

    kind: str
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    seconds: float = 0.0

    @classmethod
    def respond(cls, status: int, *, retry_after: float | str | None = None, body: bytes = b"") -> Fault:
        """Answer ``status`` (with ``Retry-After`` when given) without forwarding."""
        headers = [("content-type", "application/json")]
        if retry_after is not None:
            headers.append(("retry-after", str(retry_after)))
        payload = body or f'{{"error": "injected by the fault proxy", "status": {status}}}'.encode()
        return cls("respond", status=status, headers=tuple(headers), body=payload)

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        """Hold the request ``seconds`` (longer than the client's read timeout), then close unanswered."""
        return cls("hang", seconds=seconds)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait ``seconds``, then forward as usual."""
        return cls("slow", seconds=seconds)

    @classmethod
    def reset(cls) -> Fault:
        """Close the connection without answering (RST)."""
        return cls("reset")

    def describe(self) -> str:
        if self.kind == "respond":
            return f"HTTP {self.status}"
        return f"{self.kind} {self.seconds:g}s" if self.seconds else self.kind


@dataclass
class _Rule:
    fault: Fault
    remaining: int | None
    path: re.Pattern[str] | None = field(default=None)


class FaultProxy:
    """Forwards to ``upstream`` (a base URL) and answers with scripted faults; a context manager."""

    def __init__(self, upstream: str, *, upstream_timeout: float = 30.0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the upstream must be an http(s) base URL, not {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self._prefix = parts.path.rstrip("/")
        self._upstream_timeout = upstream_timeout
        self._rules: list[_Rule] = []
        self._requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            def handle_any(self) -> None:
                proxy._handle(self)

        self._server = BackgroundServer(Handler)

    @property
    def url(self) -> str:
        """The proxy's base URL (``http://127.0.0.1:<port>``): put it in the connector's base-URL setting."""
        return self._server.url

    @property
    def requests(self) -> list[SeenRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def inject(self, fault: Fault, *, times: int | None = 1, path: str | None = None) -> None:
        """Apply ``fault`` to the next ``times`` requests (``None``: all) whose path matches ``path`` (a regex)."""
        with self._lock:
            self._rules.append(_Rule(fault, times, re.compile(path) if path else None))

    def fail_next(self, count: int, fault: Fault) -> None:
        """Apply ``fault`` to the next ``count`` requests."""
        self.inject(fault, times=count)

    def fail_all(self, fault: Fault) -> None:
        """Apply ``fault`` to every request until :meth:`clear_faults`."""
        self.inject(fault, times=None)

    def clear_faults(self) -> None:
        """Forward everything again."""
        with self._lock:
            self._rules.clear()

    def __enter__(self) -> FaultProxy:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def _take(self, path: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining != 0 and (rule.path is None or rule.path.search(path)):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule.fault
        return None

    def _handle(self, handler: QuietHandler) -> None:
        body = handler.read_body()
        fault = self._take(handler.path)
        applied = fault if fault is not None and fault.kind != "slow" else None
        with self._lock:
            self._requests.append(handler.seen(body, applied.describe() if applied else None))
        if fault is not None and fault.kind == "respond":
            handler.answer(fault.status, list(fault.headers), fault.body)
            return
        if fault is not None and fault.kind in ("hang", "reset"):
            if fault.kind == "hang":
                self._server.stopping.wait(fault.seconds)
            _abort(handler)
            return
        if fault is not None:  # slow
            self._server.stopping.wait(fault.seconds)
        status, headers, content = self._forward(handler, body)
        handler.answer(status, headers, content)

    def _forward(self, handler: QuietHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        parts = urlsplit(self.upstream)
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = connection_class(parts.hostname or "127.0.0.1", parts.port, timeout=self._upstream_timeout)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP | {"content-length"}}
        try:
            conn.request(handler.command, self._prefix + handler.path, body=body, headers=headers)
            response = conn.getresponse()
            content = response.read()
            relayed = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP | {"content-length"}]
            return response.status, relayed, content
        except (OSError, http.client.HTTPException) as exc:
            message = f"fault proxy: upstream {self.upstream} failed: {type(exc).__name__}: {exc}"
            return 502, [("content-type", "text/plain")], message.encode()
        finally:
            conn.close()


def _abort(handler: QuietHandler) -> None:
    """Close the client's connection with a TCP reset, answering nothing."""
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
