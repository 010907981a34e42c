"""What every vendor emulator shares: an HTTP server, fault switches, rate limits, idempotency replay.

A vendor emulator subclasses :class:`Emulator` and implements :meth:`Emulator.authenticate` (the
vendor's auth header and its error body), :meth:`Emulator.route` (its endpoints) and
:meth:`Emulator.rate_limited` (its 429). The base class answers, in this order, before routing:
injected faults (:meth:`Emulator.drop_next`, :meth:`Emulator.slow_next`, :meth:`Emulator.fail_next`),
the rate limit (:meth:`Emulator.limit_rate`), then authentication. Every request is kept in
:attr:`Emulator.received`.

Emulators run in a background thread (a context manager, for tests and the conformance suite) or in
the foreground (``interlink emulate SERVICE --port N``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit

from interlink.testing._server import BackgroundServer, QuietHandler, SeenRequest

__all__ = ["Emulator", "Request", "Response"]


@dataclass(frozen=True)
class Request:
    """A request as the emulator's routes see it: path without the query, decoded query, lower-case headers."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body parsed as JSON (``None`` when empty); raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body) if self.body else None

    def form(self) -> dict[str, list[str]]:
        """The body parsed as ``application/x-www-form-urlencoded``."""
        return parse_qs(self.body.decode("utf-8", errors="replace"), keep_blank_values=True)


@dataclass
class Response:
    """What a route answers: a status, a body (bytes, or any JSON value) and extra headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":")).encode()


@dataclass
class _Fault:
    kind: str  # "drop", "slow", "respond"
    seconds: float = 0.0
    response: Response | None = None
    matches: Callable[[Request], bool] | None = None


class Emulator:
    """Base of the vendor emulators; a context manager that serves on 127.0.0.1 (a free port by default).

    ``api_key`` is the one credential the emulator accepts; ``webhook_secret`` is what it signs its
    webhooks with. Both have documented defaults so that ``interlink emulate`` needs no arguments.
    """

    service: ClassVar[str]
    """The service id of the connector this emulator stands in for."""
    default_api_key: ClassVar[str] = "test_key"
    default_webhook_secret: ClassVar[str] = "test_webhook_secret_0123456789"  # noqa: S105

    def __init__(
        self,
        *,
        api_key: str | None = None,
        webhook_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key or self.default_api_key
        self.webhook_secret = webhook_secret or self.default_webhook_secret
        self.received: list[SeenRequest] = []
        self.lock = threading.RLock()
        self._faults: deque[_Fault] = deque()
        self._rate: tuple[int, float] | None = None
        self._window: deque[float] = deque()
        self._replays: dict[str, tuple[str, Response]] = {}
        emulator = self

        class Handler(QuietHandler):
            def handle_any(self) -> None:
                emulator._serve(self)

        self._server = BackgroundServer(Handler, host, port)

    # -- life cycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to put in the integration's ``baseUrl``, without a trailing slash."""
        return self._server.url

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        self._server.serve_forever()

    # -- what a vendor emulator implements --------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        """``None`` when the request carries :attr:`api_key` as the vendor expects, else the vendor's 401."""
        raise NotImplementedError

    def route(self, request: Request) -> Response:
        """Answer an authenticated request; unknown paths get the vendor's 404."""
        raise NotImplementedError

    def rate_limited(self, retry_after: int) -> Response:
        """The vendor's 429, asking to retry after ``retry_after`` seconds."""
        return Response(429, {"error": "rate limited"}, {"Retry-After": str(retry_after)})

    def public(self, request: Request) -> bool:
        """Whether a request needs no credentials (a health path, a token endpoint)."""
        return False

    def control(self, request: Request) -> Response | None:
        """Answer a request to the emulator itself (paths under ``/_emulator/``, no credentials), for a person
        trying a flow with ``interlink emulate``. ``GET /_emulator/requests`` lists what it received; an
        emulator adds its own (``super().control(request)`` for the rest)."""
        if request.method == "GET" and request.path == "/_emulator/requests":
            with self.lock:
                seen = [{"method": r.method, "path": r.path, "body_size": len(r.body)} for r in self.received]
            return Response(200, {"requests": seen})
        return None

    # -- what the conformance suite asks of an emulator (override what your vendor has) ------------

    webhook_signed: ClassVar[bool] = True
    """Whether the vendor's webhook authentication covers the body, so a tampered body must be refused."""
    webhook_timestamped: ClassVar[bool] = True
    """Whether the vendor's webhooks carry a signed timestamp, so a stale replay must be refused."""

    def integration_settings(self) -> dict[str, Any]:
        """Settings for an integration aimed at this emulator: its base URL and the credentials it accepts."""
        return {"baseUrl": self.url, "apiKey": self.api_key}

    def webhook_headers(self, body: bytes, *, secret: str | None = None, sent_at: int | None = None) -> dict[str, str]:
        """The headers the vendor would send with ``body``, authenticated with ``secret`` (default
        :attr:`webhook_secret`) at unix time ``sent_at`` (default now)."""
        raise NotImplementedError(f"{type(self).__name__} does not send webhooks")

    def sample_webhook(self) -> bytes:
        """The body of a genuine webhook of this vendor, carrying one event."""
        raise NotImplementedError(f"{type(self).__name__} does not send webhooks")

    def webhook_request(
        self, body: bytes, *, secret: str | None = None, sent_at: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The request the vendor would send for ``body``: the bytes and headers, authenticated with ``secret``
        at ``sent_at``. Vendors that sign inside the body (Apple's JWS) override this rather than
        :meth:`webhook_headers`; the default is ``body`` with :meth:`webhook_headers`."""
        return body, self.webhook_headers(body, secret=secret, sent_at=sent_at)

    def unsigned_webhook(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        """The request without its authentication: the default drops every header :meth:`webhook_headers` adds."""
        genuine = {k.lower() for k in self.webhook_headers(body)}
        return body, {k: v for k, v in {"content-type": "application/json"}.items() if k not in genuine}

    def tampered_webhook(self, body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        """A genuine request (``body`` and ``headers``) with its signed content changed in transit."""
        changed = body.replace(b"}", b', "tampered": true}', 1) if b"}" in body else body + b" "
        return changed, headers

    def seed_records(self, count: int) -> None:
        """Make exactly ``count`` more records available to the connector's ``sync`` (each one record it yields)."""
        raise NotImplementedError(f"{type(self).__name__} has no records to sync")

    def sample_event(self) -> dict[str, Any] | None:
        """An outbound event envelope the vendor accepts (``id``, ``type``, ``occurred_at``, ``data``), or
        ``None`` for the suite's generic one."""
        return None

    # -- switches for tests -----------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        when: Callable[[Request], bool] | None = None,
    ) -> None:
        """Answer the next ``count`` requests (those ``when`` accepts) with ``status`` instead of routing them."""
        response = Response(status, body if body is not None else {"error": f"injected {status}"}, dict(headers or {}))
        if status == 429 and body is None:
            response = self.rate_limited(int((headers or {}).get("Retry-After", 1)))
        with self.lock:
            self._faults.extend(_Fault("respond", response=response, matches=when) for _ in range(count))

    def slow_next(self, count: int = 1, seconds: float = 2.0, *, when: Callable[[Request], bool] | None = None) -> None:
        """Wait ``seconds`` before answering each of the next ``count`` requests."""
        with self.lock:
            self._faults.extend(_Fault("slow", seconds=seconds, matches=when) for _ in range(count))

    def drop_next(self, count: int = 1, *, when: Callable[[Request], bool] | None = None) -> None:
        """Close the connection without an answer on each of the next ``count`` requests."""
        with self.lock:
            self._faults.extend(_Fault("drop", matches=when) for _ in range(count))

    def limit_rate(self, requests: int | None, per_seconds: float = 1.0) -> None:
        """Answer 429 (:meth:`rate_limited`) past ``requests`` per ``per_seconds``; ``None`` lifts the limit."""
        with self.lock:
            self._rate = None if requests is None else (requests, per_seconds)
            self._window.clear()

    def clear(self) -> None:
        """Forget faults, the rate limit and the requests received (not the data or replays)."""
        with self.lock:
            self._faults.clear()
            self._rate = None
            self._window.clear()
            self.received.clear()

    # -- helpers for routes -----------------------------------------------------------------------

    def replay(self, key: str | None, fingerprint: str, compute: Callable[[], Response]) -> Response:
        """Idempotency-key replay: the first answer to ``key`` is given again for the same request.

        A reused key with a different ``fingerprint`` (method, path, parameters) gets :meth:`key_reused`.
        Without a key, ``compute`` runs every time.
        """
        if not key:
            return compute()
        with self.lock:
            seen = self._replays.get(key)
            if seen is not None:
                if seen[0] != fingerprint:
                    return self.key_reused(key)
                replayed = seen[1]
                return Response(replayed.status, replayed.body, {**replayed.headers, "Idempotent-Replayed": "true"})
            response = compute()
            self._replays[key] = (fingerprint, response)
            return response

    def key_reused(self, key: str) -> Response:
        """The vendor's answer to an idempotency key reused with different parameters."""
        return Response(400, {"error": f"idempotency key {key} was used with different parameters"})

    # -- serving ----------------------------------------------------------------------------------

    def _take_fault(self, request: Request) -> _Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.matches is None or fault.matches(request):
                    self._faults.remove(fault)
                    return fault
        return None

    def _over_rate(self) -> int | None:
        """Seconds to wait when the request is over the rate limit, else ``None`` (and it is counted)."""
        with self.lock:
            if self._rate is None:
                return None
            limit, per = self._rate
            now = time.monotonic()
            while self._window and self._window[0] <= now - per:
                self._window.popleft()
            if len(self._window) >= limit:
                return max(1, int(self._window[0] + per - now + 0.999))
            self._window.append(now)
            return None

    def _serve(self, handler: QuietHandler) -> None:
        body = handler.read_body()
        seen = handler.seen(body)
        with self.lock:
            self.received.append(seen)
        split = urlsplit(handler.path)
        query = parse_qs(split.query, keep_blank_values=True)
        request = Request(handler.command, split.path, query, seen.headers, body)
        if request.path.startswith("/_emulator/"):
            with self.lock:
                self.received.pop()  # not the vendor's API: keep it out of what the connector sent
            answer = self.control(request) or Response(404, {"error": f"no emulator control at {request.path}"})
            handler.answer(answer.status, [("content-type", answer.content_type)], answer.encoded())
            return
        fault = self._take_fault(request)
        if fault is not None and fault.kind == "drop":
            handler.close_connection = True
            handler.connection.close()
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
        if fault is not None and fault.response is not None:
            response = fault.response
        elif (wait := self._over_rate()) is not None:
            response = self.rate_limited(wait)
        else:
            response = (None if self.public(request) else self.authenticate(request)) or self._route(request)
        headers = [("content-type", response.content_type), *response.headers.items()]
        handler.answer(response.status, headers, response.encoded())

    def _route(self, request: Request) -> Response:
        try:
            return self.route(request)
        except Exception as exc:  # a bug in the emulator shows as a 500 the test can read
            return Response(500, {"error": f"emulator error: {type(exc).__name__}: {exc}"})
