"""A lean httpx transport over the standard library's ``http.client``, with keep-alive pooling.

Why: a delivery worker spends most of its CPU in the HTTP client. httpx's own transport (httpcore) costs
about twice the CPU of ``http.client`` per request (see ``bench/README.md``); connectors still get the
full ``httpx.Client`` API on top. When proxy variables (``HTTPS_PROXY``...) are set, the core falls back
to httpx's transport, which honours them.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import urllib.request
from collections import defaultdict
from typing import Any

import httpx

__all__ = ["StdlibTransport", "default_transport"]

_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class StdlibTransport(httpx.BaseTransport):
    """Sends each request on a pooled ``http.client`` connection; maps failures to httpx's exceptions."""

    def __init__(self, *, verify: ssl.SSLContext | None = None, max_idle_per_host: int = 16) -> None:
        self._ssl = verify or ssl.create_default_context()
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = defaultdict(list)
        self._max_idle = max_idle_per_host
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        key = (request.url.scheme, request.url.host, request.url.port or (443 if request.url.scheme == "https" else 80))
        body = request.read()
        target = request.url.raw_path.decode("ascii")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        reused, conn = self._checkout(key, timeout)
        try:
            status, reason, response_headers, content = self._exchange(conn, request.method, target, body, headers)
        except _STALE:
            conn.close()
            if not reused:  # a fresh connection that fails is the server's answer, not a stale socket
                raise httpx.RemoteProtocolError(
                    "the server closed the connection without answering", request=request
                ) from None
            _, conn = self._checkout(key, timeout, fresh=True)
            status, reason, response_headers, content = self._send_once(conn, request, target, body, headers)
        except BaseException as exc:
            conn.close()
            raise _translate(exc, request) from None
        self._checkin(key, conn, response_headers)
        return httpx.Response(
            status,
            headers=response_headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason.encode("latin-1", "replace")},
        )

    def _send_once(
        self,
        conn: http.client.HTTPConnection,
        request: httpx.Request,
        target: str,
        body: bytes,
        headers: list[tuple[str, str]],
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        try:
            return self._exchange(conn, request.method, target, body, headers)
        except BaseException as exc:
            conn.close()
            raise _translate(exc, request) from None

    @staticmethod
    def _exchange(
        conn: http.client.HTTPConnection, method: str, target: str, body: bytes, headers: list[tuple[str, str]]
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """One request in a single ``sendall`` (http.client sends head and body apart: two packets)."""
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        if conn.sock is None:
            conn.connect()
        assert conn.sock is not None
        conn.sock.sendall(head.encode("latin-1") + body)
        response = http.client.HTTPResponse(conn.sock, method=method)
        try:
            response.begin()
            content = response.read()
        finally:
            response.close()
        if response.will_close:
            conn.close()
        return response.status, response.reason, response.getheaders(), content

    def _checkout(
        self, key: tuple[str, str, int], timeout: dict[str, Any], *, fresh: bool = False
    ) -> tuple[bool, http.client.HTTPConnection]:
        if not fresh:
            with self._lock:
                idle = self._idle[key]
                pooled = idle.pop() if idle else None
            if pooled is not None:
                if pooled.sock is not None:
                    pooled.sock.settimeout(timeout.get("read"))
                return True, pooled
        scheme, host, port = key
        connect_timeout = timeout.get("connect")
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=connect_timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=connect_timeout)
        try:
            conn.connect()
        except BaseException as exc:
            conn.close()
            raise _translate(exc, None, connecting=True) from None
        assert conn.sock is not None
        conn.sock.settimeout(timeout.get("read"))
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return False, conn

    def _checkin(
        self, key: tuple[str, str, int], conn: http.client.HTTPConnection, headers: list[tuple[str, str]]
    ) -> None:
        closing = conn.sock is None or any(k.lower() == "connection" and v.lower() == "close" for k, v in headers)
        with self._lock:
            idle = self._idle[key]
            if closing or len(idle) >= self._max_idle:
                conn.close()
            else:
                idle.append(conn)

    def close(self) -> None:
        with self._lock:
            for idle in self._idle.values():
                for conn in idle:
                    conn.close()
            self._idle.clear()


def _translate(exc: BaseException, request: httpx.Request | None, *, connecting: bool = False) -> BaseException:
    """The httpx exception a connector expects for a failure of the standard library's socket layer."""
    if isinstance(exc, httpx.HTTPError) or not isinstance(exc, Exception):
        return exc
    message = str(exc) or type(exc).__name__
    kwargs: dict[str, Any] = {"request": request} if request is not None else {}
    if isinstance(exc, TimeoutError | socket.timeout):
        return httpx.ConnectTimeout(message, **kwargs) if connecting else httpx.ReadTimeout(message, **kwargs)
    if connecting and isinstance(exc, OSError):
        return httpx.ConnectError(message, **kwargs)
    if isinstance(exc, http.client.HTTPException | ConnectionError):
        return httpx.RemoteProtocolError(message, **kwargs)
    if isinstance(exc, OSError):
        return httpx.ReadError(message, **kwargs)
    return exc


def default_transport() -> httpx.BaseTransport:
    """The stdlib transport, unless the environment asks for a proxy (httpx's transport honours it)."""
    proxies = urllib.request.getproxies()
    if any(k in proxies for k in ("http", "https", "all")):
        return httpx.HTTPTransport()
    return StdlibTransport()
