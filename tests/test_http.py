"""The recording HTTP client against a real local HTTP server, and the status/error classification."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from interlink import __version__
from interlink.connector import PermanentError, TransientError
from interlink.http import (
    DEFAULT_TIMEOUT,
    RecordingClient,
    parse_retry_after,
    raise_for_status,
    recording_client,
    transient_from_transport_error,
)
from interlink.secrets import MASK


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


@dataclass
class Vendor:
    """A local HTTP server whose behaviour each path chooses; it remembers what it received."""

    url: str
    received: list[Received] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # headers and body go out in two writes: no delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.server.vendor.received.append(
            Received(self.command, self.path, dict(self.headers.items()), body, self.client_address[1])
        )
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/close":  # hang up without answering
            self.close_connection = True
            return
        if url.path == "/slow":
            time.sleep(float(query["seconds"]))
        status, headers, payload = 200, {"Content-Type": "application/json"}, body
        if url.path.startswith("/status/"):
            status = int(url.path.rsplit("/", 1)[1])
            headers = {k: v for k, v in query.items() if k[0].isupper()}
            payload = query.get("body", "").encode()
        elif url.path == "/big":
            headers, payload = {"Content-Type": "text/plain"}, b"x" * int(query["n"])
        elif url.path == "/gzip":
            headers, payload = {"Content-Encoding": "gzip"}, gzip.compress(b"hello " * 1000)
        elif url.path == "/short":  # promise more than is sent, then hang up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"only a little")
            self.close_connection = True
            return
        elif url.path == "/secret":
            headers["Set-Cookie"] = "session=abc"
            headers["X-Echo"] = query.get("echo", "")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _handle


class _Server(ThreadingHTTPServer):
    vendor: Vendor

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left is what some tests want


@pytest.fixture
def vendor() -> Iterator[Vendor]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.vendor = Vendor(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.vendor
    server.shutdown()
    server.server_close()


@pytest.fixture
def client() -> Iterator[RecordingClient]:
    with recording_client(secrets=["sk_live_4eC39HqLyjWDarjtT1zdp7dc", "s3cr/et+val=ue&x"]) as c:
        yield c


def test_an_exchange_is_recorded_with_everything_the_log_shows(vendor: Vendor, client: RecordingClient) -> None:
    response = client.post(f"{vendor.url}/echo?page=2", json={"a": 1}, headers={"X-Custom": "yes"})
    assert response.json() == {"a": 1}  # the connector still gets its body
    [ex] = client.exchanges
    assert ex.method == "POST"
    assert ex.url == f"{vendor.url}/echo?page=2"
    assert ex.status_code == 200
    assert ex.request_headers["x-custom"] == "yes"
    assert ex.request_headers["user-agent"] == f"interlink/{__version__}"
    assert json.loads(ex.request_body) == {"a": 1}
    assert ex.request_body_size == len(response.request.content)
    assert ex.response_headers["content-type"] == "application/json"
    assert json.loads(ex.response_body) == {"a": 1}
    assert ex.response_body_size == len(response.content)
    assert ex.error is None
    assert ex.duration_ms > 0
    assert ex.started_at.tzinfo is not None
    assert ex.started_at.utcoffset() == timedelta(0)
    as_dict = json.loads(json.dumps(ex.as_dict()))
    assert as_dict["started_at"] == ex.started_at.isoformat()
    client.clear()
    assert client.exchanges == []


def test_credential_headers_are_masked_but_really_sent(vendor: Vendor, client: RecordingClient) -> None:
    sent = {"Authorization": "Bearer abc.def.ghi", "X-Signature": "t=1,v1=deadbeef", "X-Api-Key": "k-123456"}
    client.get(f"{vendor.url}/secret", headers={**sent, "Cookie": "a=b"})
    assert vendor.received[0].headers["Authorization"] == "Bearer abc.def.ghi"
    assert vendor.received[0].headers["X-Signature"] == "t=1,v1=deadbeef"
    [ex] = client.exchanges
    for name in ("authorization", "x-signature", "x-api-key", "cookie"):
        assert ex.request_headers[name] == MASK
    assert ex.response_headers["set-cookie"] == MASK
    assert "abc.def.ghi" not in json.dumps(ex.as_dict())


def test_secret_values_are_masked_in_url_bodies_and_errors(vendor: Vendor, client: RecordingClient) -> None:
    key, odd = "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "s3cr/et+val=ue&x"
    response = client.post(
        f"{vendor.url}/secret",
        params={"key": key, "other": odd, "echo": key},
        json={"customer": {"key": key, "note": odd}},
    )
    assert key in response.text  # the connector sees the real answer
    assert vendor.received[0].body == response.request.content
    [ex] = client.exchanges
    record = json.dumps(ex.as_dict())
    assert key not in record
    assert "s3cr" not in record
    assert ex.url.count(MASK) == 3  # key, other and echo
    assert json.loads(ex.request_body) == {"customer": {"key": MASK, "note": MASK}}
    assert ex.response_headers["x-echo"] == MASK
    assert ex.response_body_size == len(response.content)


def test_token_exchanges_keep_their_credentials_out_of_the_log(vendor: Vendor, client: RecordingClient) -> None:
    """An OAuth grant (a signed assertion in a form body, tokens in the JSON answer) logs no usable credential."""
    grant = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "eyJhbGciOi.eyJpc3Mi.c2ln"}
    client.post(f"{vendor.url}/echo", data=grant)
    answer = {"access_token": "ya29.a0Af-token", "expires_in": 3599, "token_type": "Bearer", "refresh_token": "1//r"}
    client.post(f"{vendor.url}/echo", json=answer)
    asked, answered = client.exchanges
    assert asked.request_body == f"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={MASK}"
    assert json.loads(answered.response_body) == {**answer, "access_token": MASK, "refresh_token": MASK}
    assert "eyJhbGciOi" not in json.dumps([asked.as_dict(), answered.as_dict()])


def test_query_parameters_named_like_credentials_are_masked(vendor: Vendor, client: RecordingClient) -> None:
    client.get(f"{vendor.url}/echo", params={"api_token": "not-a-known-secret", "page": "3"})
    assert client.exchanges[0].url == f"{vendor.url}/echo?api_token={MASK}&page=3"


def test_bodies_are_truncated_but_keep_their_size(vendor: Vendor) -> None:
    with recording_client(body_limit=100) as client:
        response = client.post(f"{vendor.url}/big?n=5000", content=b"y" * 1000)
        assert len(response.content) == 5000
        [ex] = client.exchanges
        assert (ex.request_body, ex.request_body_size) == ("y" * 100, 1000)
        assert (ex.response_body, ex.response_body_size) == ("x" * 100, 5000)


def test_a_secret_cut_by_truncation_leaves_no_fragment(vendor: Vendor) -> None:
    secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
    with recording_client(secrets=[secret], body_limit=50) as client:
        client.post(f"{vendor.url}/echo", content=("z" * 9990 + secret).encode())
        [ex] = client.exchanges
        assert "sk_live" not in ex.request_body + ex.response_body
        assert ex.request_body == "z" * 50


def test_gzip_bodies_are_recorded_decoded(vendor: Vendor, client: RecordingClient) -> None:
    response = client.get(f"{vendor.url}/gzip")
    assert response.text == "hello " * 1000
    [ex] = client.exchanges
    assert ex.response_body == "hello " * 1000
    assert ex.response_body_size == int(response.headers["Content-Length"])  # bytes on the wire


def test_streamed_responses_are_recorded_when_closed(vendor: Vendor) -> None:
    with recording_client(body_limit=10) as client:
        with client.stream("GET", f"{vendor.url}/big?n=100000") as response:
            assert client.exchanges == []  # headers only so far
            assert sum(len(chunk) for chunk in response.iter_bytes()) == 100000
        [ex] = client.exchanges
        assert (ex.response_body, ex.response_body_size, ex.error) == ("x" * 10, 100000, None)


def test_a_read_timeout_is_recorded_and_reraised(vendor: Vendor) -> None:
    with recording_client(timeout=httpx.Timeout(5.0, read=0.2)) as client:
        with pytest.raises(httpx.ReadTimeout) as caught:
            client.get(f"{vendor.url}/slow?seconds=1")
        [ex] = client.exchanges
        assert ex.error is not None
        assert ex.error.startswith("ReadTimeout")
        assert ex.status_code is None
        assert ex.response_body_size is None
        assert 150 < ex.duration_ms < 1000
        error = transient_from_transport_error(caught.value)
        assert error.message == "request to 127.0.0.1 timed out: ReadTimeout"


def test_no_request_runs_without_a_timeout(vendor: Vendor) -> None:
    with recording_client(timeout=httpx.Timeout(5.0, read=0.2)) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get(f"{vendor.url}/slow?seconds=2", timeout=None)
        assert time.monotonic() - started < 1.5
    with recording_client() as client:
        response = client.get(f"{vendor.url}/echo", timeout=None)
        assert response.request.extensions["timeout"] == DEFAULT_TIMEOUT.as_dict()
        response = client.send(httpx.Request("GET", f"{vendor.url}/echo"))
        assert response.request.extensions["timeout"] == DEFAULT_TIMEOUT.as_dict()
        response = client.get(f"{vendor.url}/echo", timeout=httpx.Timeout(60.0, connect=None))
        assert response.request.extensions["timeout"] == {"connect": 5.0, "read": 60.0, "write": 60.0, "pool": 60.0}


def test_a_refused_connection_is_recorded() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with recording_client() as client:
        with pytest.raises(httpx.ConnectError) as caught:
            client.post(f"http://127.0.0.1:{port}/x", json={"a": 1})
        [ex] = client.exchanges
        assert ex.error is not None
        assert ex.error.startswith("ConnectError")
        assert (ex.status_code, ex.request_body) == (None, '{"a":1}')
        error = transient_from_transport_error(caught.value)
        assert isinstance(error, TransientError)
        assert error.message == "connection to 127.0.0.1 failed: ConnectError"


def test_a_hang_up_is_recorded(vendor: Vendor, client: RecordingClient) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{vendor.url}/close")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{vendor.url}/short")
    no_answer, cut_short = client.exchanges
    assert no_answer.error is not None
    assert no_answer.error.startswith("RemoteProtocolError")
    assert cut_short.error is not None
    assert cut_short.error.startswith("RemoteProtocolError")
    assert "IncompleteRead(13 bytes read, 987 more expected)" in cut_short.error  # the transport reads whole bodies


def test_redirects_are_not_followed(vendor: Vendor, client: RecordingClient) -> None:
    response = client.get(f"{vendor.url}/status/302", params={"Location": "/echo"})
    assert response.status_code == 302
    assert len(vendor.received) == 1
    assert client.exchanges[0].response_headers["location"] == "/echo"


def test_one_connection_serves_many_requests(vendor: Vendor, client: RecordingClient) -> None:
    for i in range(200):
        client.post(f"{vendor.url}/echo", json={"i": i})
    assert len(client.exchanges) == 200
    assert len({r.client_port for r in vendor.received}) == 1


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"content-type": "application/json", "Webhook-Id": "evt_1"},
        {"user-agent": "mine/1.0", "Accept": "application/json"},
        {"Accept": "a", "accept": "b"},
        {"x-raw": b"bytes"},  # not text: httpx's own path
    ],
)
@pytest.mark.parametrize("content", [None, b"", b'{"a": 1}'])
def test_requests_are_built_as_httpx_builds_them(headers: dict[str, Any] | None, content: bytes | None) -> None:
    """The client's lean request building gives the request httpx's own would: same headers, in order."""
    ours = recording_client()
    theirs = httpx.Client(headers=ours.headers, timeout=ours.timeout)
    for url in ("http://127.0.0.1:8000/x?q=1", "https://user:pw@example.com:8443/a/b"):
        built = ours.build_request("POST", url, content=content, headers=headers)
        expected = theirs.build_request("POST", url, content=content, headers=headers)
        assert_same(built, expected)
        # as httpx.Client.post calls it: every part named, most of them None
        named: dict[str, Any] = dict.fromkeys(("data", "files", "json", "params", "cookies", "extensions"))
        built = ours.build_request(
            method="POST", url=url, content=content, headers=headers, timeout=httpx.USE_CLIENT_DEFAULT, **named
        )
        assert_same(built, expected)


def assert_same(built: httpx.Request, expected: httpx.Request) -> None:
    assert built.headers.multi_items() == expected.headers.multi_items()
    assert (built.method, built.url, built.content) == (expected.method, expected.url, expected.content)
    assert built.extensions == expected.extensions


NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("1.5", 1.5),
        (" 7 ", 7.0),
        (format_datetime(NOW + timedelta(seconds=10), usegmt=True), 10.0),
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
        ("-5", 0.0),
        ("999999", 3600.0),
        ("soon", None),
        ("", None),
        ("nan", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_cap_and_clock() -> None:
    assert parse_retry_after("120", cap=60.0) == 60.0
    ahead = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    delay = parse_retry_after(ahead)
    assert delay is not None
    assert 8.0 <= delay <= 10.0


def _response(status: int, body: str = "", **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, text=body)


def test_raise_for_status_passes_success_and_redirects() -> None:
    for status in (200, 201, 204, 304):
        raise_for_status(_response(status))


@pytest.mark.parametrize(
    ("status", "headers", "delay"),
    [(429, {"Retry-After": "30"}, 30.0), (500, {}, None), (503, {"Retry-After": "5"}, 5.0), (408, {}, None)],
)
def test_raise_for_status_transient(status: int, headers: dict[str, str], delay: float | None) -> None:
    with pytest.raises(TransientError) as caught:
        raise_for_status(_response(status, "busy", **headers))
    assert caught.value.delay == delay
    assert f"HTTP {status}" in caught.value.message


def test_raise_for_status_authentication_names_the_setting() -> None:
    with pytest.raises(PermanentError) as caught:
        raise_for_status(_response(401, '{"error": "invalid key"}'), setting="apiKey")
    assert caught.value.message == "authentication failed (HTTP 401) — check settings.apiKey"
    assert caught.value.setting == "apiKey"
    with pytest.raises(PermanentError) as caught:
        raise_for_status(_response(403))
    assert (caught.value.message, caught.value.setting) == ("authentication failed (HTTP 403)", None)


def test_raise_for_status_other_client_errors_carry_a_safe_excerpt() -> None:
    with pytest.raises(PermanentError) as caught:
        raise_for_status(_response(404, "no such list"))
    assert caught.value.message == "vendor rejected the request (HTTP 404: no such list)"
    echoed = '{"error": "bad key sk_live_4eC39HqLyjWDarjtT1zdp7dc",\n "detail": "' + "x " * 300 + '"}'
    with pytest.raises(PermanentError) as caught:
        raise_for_status(_response(422, echoed), setting="apiKey")
    assert "sk_live" not in caught.value.message
    assert MASK in caught.value.message
    assert "\n" not in caught.value.message
    assert len(caught.value.message) < 250
    assert not isinstance(caught.value, TransientError)
