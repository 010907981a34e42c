"""A lean HTTP/1.1 transport for httpx over plain sockets, with keep-alive pooling.

Why: a delivery worker spends most of its CPU in the HTTP client. httpx's own transport (httpcore)
costs about twice the CPU of a plain socket exchange per request, and even ``http.client`` parses
headers through ``email.parser`` and builds a new buffered reader per response (see ``bench/README.md``).
Connectors still get the full ``httpx.Client`` API on top. Where proxy variables (``HTTPS_PROXY``...)
are set, the core falls back to httpx's transport, which honours them.

It speaks HTTP/1.1 only: one request at a time per connection, bodies by ``Content-Length``, chunked
encoding or until close; ``1xx`` interim answers are skipped; ``HEAD``, ``204`` and ``304`` have no body.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import httpx

__all__ = ["StdlibTransport", "default_transport"]

_MAX_LINE = 65_536
_MAX_HEADERS = 200


class _Stale(Exception):
    """A pooled connection the server had closed: nothing was answered, so the request may be resent."""


@dataclass
class _Connection:
    sock: socket.socket
    reader: BinaryIO = field(init=False)
    used: bool = False

    def __post_init__(self) -> None:
        self.reader = self.sock.makefile("rb")

    def close(self) -> None:
        for closeable in (self.reader, self.sock):
            with contextlib.suppress(OSError):
                closeable.close()


class StdlibTransport(httpx.BaseTransport):
    """Sends each request on a pooled socket; maps failures to the exceptions httpx raises."""

    def __init__(self, *, verify: ssl.SSLContext | None = None, max_idle_per_host: int = 16) -> None:
        self._ssl = verify or ssl.create_default_context()
        self._idle: dict[tuple[str, str, int], list[_Connection]] = defaultdict(list)
        self._max_idle = max_idle_per_host
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        scheme = request.url.scheme
        key = (scheme, request.url.host, request.url.port or (443 if scheme == "https" else 80))
        head = _request_head(request)
        body = request.read()
        conn = self._pooled(key, timeout)
        try:
            if conn is not None:
                try:
                    status, headers, content, keep = _exchange(conn, request.method, head, body)
                except _Stale:
                    conn.close()
                    conn = None
            if conn is None:
                conn = self._connect(key, timeout, request)
                status, headers, content, keep = _exchange(conn, request.method, head, body)
        except _Stale:
            assert conn is not None
            conn.close()
            raise httpx.RemoteProtocolError(
                "the server closed the connection without answering", request=request
            ) from None
        except BaseException as exc:
            if conn is not None:
                conn.close()
            raise _translate(exc, request) from None
        self._release(key, conn, keep)
        return httpx.Response(
            status, headers=headers, stream=httpx.ByteStream(content), extensions={"http_version": b"HTTP/1.1"}
        )

    def _pooled(self, key: tuple[str, str, int], timeout: dict[str, Any]) -> _Connection | None:
        with self._lock:
            idle = self._idle[key]
            conn = idle.pop() if idle else None
        if conn is not None:
            conn.sock.settimeout(timeout.get("read"))
        return conn

    def _connect(self, key: tuple[str, str, int], timeout: dict[str, Any], request: httpx.Request) -> _Connection:
        scheme, host, port = key
        try:
            sock = socket.create_connection((host, port), timeout=timeout.get("connect"))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = self._ssl.wrap_socket(sock, server_hostname=host)
        except BaseException as exc:
            raise _translate(exc, request, connecting=True) from None
        sock.settimeout(timeout.get("read"))
        return _Connection(sock)

    def _release(self, key: tuple[str, str, int], conn: _Connection, keep: bool) -> None:
        with self._lock:
            idle = self._idle[key]
            if keep and len(idle) < self._max_idle:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            for idle in self._idle.values():
                for conn in idle:
                    conn.close()
            self._idle.clear()


def _request_head(request: httpx.Request) -> bytes:
    target = request.url.raw_path
    lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
    lines.extend(name + b": " + value for name, value in request.headers.raw)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _exchange(
    conn: _Connection, method: str, head: bytes, body: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    """Send one request in a single ``sendall`` and read the whole answer: (status, headers, body, keep-alive)."""
    reused = conn.used
    conn.used = True
    try:
        conn.sock.sendall(head + body)
        status_line = conn.reader.readline(_MAX_LINE)
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        if reused:
            raise _Stale from None
        raise
    if not status_line:
        if reused:
            raise _Stale
        raise httpx.RemoteProtocolError("the server closed the connection without answering")
    while True:
        version, status = _status(status_line)
        headers = _headers(conn.reader)
        if not 100 <= status < 200 or status == 101:
            break
        status_line = conn.reader.readline(_MAX_LINE)  # an interim answer (100 Continue): the real one follows
    fields = {name.lower(): value for name, value in headers}
    connection = fields.get(b"connection", b"").lower()
    keep = (version == b"HTTP/1.1" and b"close" not in connection) or b"keep-alive" in connection
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return status, headers, b"", keep
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        return status, headers, _chunked(conn.reader), keep
    length = fields.get(b"content-length")
    if length is not None:
        size = int(length)
        content = conn.reader.read(size)
        if len(content) < size:
            raise httpx.RemoteProtocolError(
                f"IncompleteRead({len(content)} bytes read, {size - len(content)} more expected)"
            )
        return status, headers, content, keep
    return status, headers, conn.reader.read(), False  # the body ends when the server closes


def _status(line: bytes) -> tuple[bytes, int]:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"malformed status line: {line[:80]!r}")
    return parts[0], int(parts[1])


def _headers(reader: BinaryIO) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    while True:
        line = reader.readline(_MAX_LINE)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise httpx.RemoteProtocolError("the connection closed in the middle of the headers")
        name, sep, value = line.partition(b":")
        if not sep:
            raise httpx.RemoteProtocolError(f"malformed header line: {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
        if len(headers) > _MAX_HEADERS:
            raise httpx.RemoteProtocolError("too many headers")


def _chunked(reader: BinaryIO) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = reader.readline(_MAX_LINE)
        if not size_line:
            raise httpx.RemoteProtocolError("the connection closed in the middle of a chunked body")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while reader.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(parts)
        chunk = reader.read(size)
        if len(chunk) < size:
            raise httpx.RemoteProtocolError("the connection closed in the middle of a chunk")
        parts.append(chunk)
        reader.readline(_MAX_LINE)


def _translate(exc: BaseException, request: httpx.Request | None, *, connecting: bool = False) -> BaseException:
    """The httpx exception a connector expects for a failure of the socket layer."""
    if isinstance(exc, httpx.HTTPError):
        if request is not None and isinstance(exc, httpx.RequestError):
            exc.request = request
        return exc
    if not isinstance(exc, Exception):
        return exc
    message = str(exc) or type(exc).__name__
    kwargs: dict[str, Any] = {"request": request} if request is not None else {}
    if isinstance(exc, TimeoutError | socket.timeout):
        return httpx.ConnectTimeout(message, **kwargs) if connecting else httpx.ReadTimeout(message, **kwargs)
    if connecting and isinstance(exc, OSError):
        return httpx.ConnectError(message, **kwargs)
    if isinstance(exc, ConnectionError):
        return httpx.RemoteProtocolError(message, **kwargs)
    if isinstance(exc, OSError | ValueError):
        return httpx.ReadError(message, **kwargs)
    return exc


def default_transport() -> httpx.BaseTransport:
    """The lean transport, unless the environment asks for a proxy (httpx's transport honours it)."""
    proxies = urllib.request.getproxies()
    if any(k in proxies for k in ("http", "https", "all")):
        return httpx.HTTPTransport()
    return StdlibTransport()
