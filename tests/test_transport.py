"""The stdlib transport under the recording client: keep-alive, stale sockets, errors as httpx raises them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from interlink.transport import StdlibTransport

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
    )
    while len(rest) < length:
        rest += conn.recv(65536)
    return head


@pytest.fixture
def forgetful_server() -> Iterator[tuple[int, list[int]]]:
    """Answers one request per connection, then silently closes it (as an idle-timeout would)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    connections: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connections.append(1)
            with conn:
                if _read_request(conn):
                    conn.sendall(RESPONSE)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], connections
    listener.close()


def test_a_stale_pooled_connection_is_replaced(forgetful_server: tuple[int, list[int]]) -> None:
    port, connections = forgetful_server
    with httpx.Client(transport=StdlibTransport(), timeout=5) as client:
        for _ in range(3):
            response = client.post(f"http://127.0.0.1:{port}/x", content=b"{}")
            assert (response.status_code, response.text) == (200, "ok")
    assert len(connections) == 3


def test_keep_alive_reuses_one_connection() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[int] = []

    def serve() -> None:
        conn, _ = listener.accept()
        accepted.append(1)
        with conn:
            while _read_request(conn):
                conn.sendall(RESPONSE)

    threading.Thread(target=serve, daemon=True).start()
    with httpx.Client(transport=StdlibTransport(), timeout=5) as client:
        assert [client.get(f"http://127.0.0.1:{listener.getsockname()[1]}/").text for _ in range(5)] == ["ok"] * 5
    listener.close()
    assert accepted == [1]


def test_errors_are_httpx_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with httpx.Client(transport=StdlibTransport(), timeout=2) as client, pytest.raises(httpx.ConnectError):
        client.get(f"http://127.0.0.1:{port}/")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        timeout = httpx.Timeout(5, read=0.2)
        with httpx.Client(transport=StdlibTransport(), timeout=timeout) as client, pytest.raises(httpx.ReadTimeout):
            client.get(f"http://127.0.0.1:{silent.getsockname()[1]}/")
    finally:
        silent.close()


def test_gzip_bodies_are_decoded_by_httpx() -> None:
    import gzip

    body = gzip.compress(b'{"ok": true}')
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            _read_request(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    threading.Thread(target=serve, daemon=True).start()
    with httpx.Client(transport=StdlibTransport(), timeout=5) as client:
        assert client.get(f"http://127.0.0.1:{listener.getsockname()[1]}/").json() == {"ok": True}
    listener.close()
