"""The recording HTTP client connectors get in their context, and the helpers that classify its failures.

Connectors reach vendors only through ``ctx.http``, a :class:`RecordingClient`: a plain
``httpx.Client`` (the API connector authors already know) that

* never sends a request without connect/read/write/pool timeouts (``timeout=None`` gets the defaults),
* keeps connections alive, because one client serves many deliveries in a worker,
* does not follow redirects, so a moved endpoint shows up in the log instead of being followed silently,
* records every exchange, failed ones too, as a redacted, truncated :class:`RecordedExchange`: the
  communication log the API shows for each attempt. Secrets never reach that log.

:func:`raise_for_status`, :func:`transient_from_transport_error` and :func:`parse_retry_after` turn
HTTP outcomes into the typed errors of :mod:`interlink.connector`, so every connector classifies
a 429, a 503 or a bad API key the same way.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache, partial
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit, urlunsplit

import httpx

from interlink import __version__
from interlink.connector import PermanentError, TransientError
from interlink.secrets import MASK, redact
from interlink.transport import default_transport

__all__ = [
    "DEFAULT_TIMEOUT",
    "RecordedExchange",
    "RecordingClient",
    "mask_credential_fields",
    "parse_retry_after",
    "raise_for_status",
    "recording_client",
    "sensitive_header",
    "transient_from_transport_error",
]

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)
"""Every outbound request gets these limits unless it sets its own: a hung vendor must not hang a worker."""

_MASKED_HEADERS = frozenset({"authorization", "authentication", "proxy-authorization", "cookie", "set-cookie"})
_SENSITIVE_PARTS = ("signature", "secret", "token", "api-key", "apikey", "api_key", "password")


_CREDENTIAL_FIELDS = (
    "access_token",
    "refresh_token",
    "id_token",
    "assertion",
    "client_assertion",
    "client_secret",
    "private_key",
    "password",
)
"""Body fields (JSON keys, form fields) whose values are credentials: OAuth token exchanges carry them."""
_FIELDS = "|".join(_CREDENTIAL_FIELDS)
_JSON_FIELD = re.compile(rf'("(?:{_FIELDS})"\s*:\s*)"(?:[^"\\]|\\.)*"?')
_FORM_FIELD = re.compile(rf"((?:^|&)(?:{_FIELDS})=)[^&]*")


def mask_credential_fields(text: str) -> str:
    """``text`` (a JSON or form body, possibly cut short) with the values of credential fields masked."""
    if not any(name in text for name in _CREDENTIAL_FIELDS):
        return text
    text = _JSON_FIELD.sub(lambda m: f'{m.group(1)}"{MASK}"', text)
    return _FORM_FIELD.sub(lambda m: m.group(1) + MASK, text)


@lru_cache(maxsize=1024)
def sensitive_header(name: str) -> bool:
    """Whether a header or query parameter named ``name`` carries a credential, judging by its name."""
    name = name.lower()
    return name in _MASKED_HEADERS or any(part in name for part in _SENSITIVE_PARTS)


@dataclass(frozen=True)
class RecordedExchange:
    """One HTTP exchange as the communication log keeps it: redacted and truncated, safe to store and show.

    It knows nothing of attempts or events; the core files it under the attempt that made it.
    ``*_body_size`` keep the original size in bytes when the body text was cut to the body limit.
    """

    started_at: datetime
    duration_ms: float
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    request_body_size: int
    status_code: int | None
    response_headers: dict[str, str]
    response_body: str
    response_body_size: int | None
    """Bytes received, as they came over the wire (before gzip decoding); ``None`` without a response."""
    error: str | None
    """``"ReadTimeout: timed out"`` when the exchange failed; the exception itself is re-raised."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe values, for the store and the API."""
        return {**dataclasses.asdict(self), "started_at": self.started_at.isoformat()}


class _RecordingStream(httpx.SyncByteStream):
    """Passes a response body through untouched while keeping its head and size; reports once on close."""

    def __init__(self, inner: httpx.SyncByteStream, capture: int, on_close: Callable[[_RecordingStream], None]) -> None:
        self.inner = inner
        self.capture = capture
        self.on_close: Callable[[_RecordingStream], None] | None = on_close
        self.head = bytearray()
        self.size = 0
        self.finished = False
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self.inner:
                self.size += len(chunk)
                if len(self.head) < self.capture:
                    self.head += chunk[: self.capture - len(self.head)]
                yield chunk
        except Exception as exc:
            self.error = exc
            raise
        self.finished = True

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            on_close, self.on_close = self.on_close, None
            if on_close is not None:
                on_close(self)


_OTHER_REQUEST_PARTS = ("data", "files", "json", "params", "cookies", "extensions")


class RecordingClient(httpx.Client):
    """An ``httpx.Client`` that enforces timeouts and records every exchange in :attr:`exchanges`.

    Use it like any ``httpx.Client``. Each request appends one :class:`RecordedExchange`, when its
    response is closed (at once unless it was streamed: close streamed responses, ``with`` does), or
    when it fails: transport errors are recorded with ``error`` set and then re-raised unchanged. The
    core calls :meth:`clear` before an attempt and reads :attr:`exchanges` after it, so give each
    worker thread its own client: the list is shared by every request made through it.
    Build it with :func:`recording_client`.
    """

    def __init__(
        self,
        *,
        secrets: Iterable[str] = (),
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        body_limit: int = 16_384,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            timeout=_complete(timeout.as_dict(), DEFAULT_TIMEOUT),
            transport=transport or default_transport(),
            follow_redirects=False,
            headers={"User-Agent": f"interlink/{__version__}"},
        )
        self._urls: dict[str, httpx.URL] = {}
        self._masked_urls: dict[httpx.URL, str] = {}
        self.exchanges: list[RecordedExchange] = []
        """Every exchange since the last :meth:`clear`, oldest first."""
        self._secrets = _secret_forms(secrets)
        self._longest = max((len(s) for s in self._secrets), default=0)
        self._body_limit = body_limit
        # Enough bytes for body_limit characters of UTF-8 plus a secret straddling the cut.
        self._capture = 4 * (body_limit + self._longest) + 4

    def build_request(self, method: str, url: httpx.URL | str, *args: Any, **kwargs: Any) -> httpx.Request:
        """As httpx's, with parsed URLs remembered: a connector posts to the same few URLs all day.

        The common request (an absolute URL, a ``bytes`` body or none, ASCII headers, nothing else) is
        built with the client's headers merged here, as httpx merges them: httpx's own merging builds
        four ``Headers`` objects a request, more CPU than sending it on a kept-alive connection.
        """
        if isinstance(url, str):
            url = _remember(self._urls, url, httpx.URL)
        headers = kwargs.get("headers")
        content = kwargs.get("content")
        if (
            not args
            and all(kwargs.get(name) is None for name in _OTHER_REQUEST_PARTS)
            and kwargs.get("timeout", httpx.USE_CLIENT_DEFAULT) is httpx.USE_CLIENT_DEFAULT
            and kwargs.keys() <= {"content", "headers", "timeout", *_OTHER_REQUEST_PARTS}
            and isinstance(content, bytes | None)
            and isinstance(headers, dict | None)
            and url.is_absolute_url
            and not self.base_url.raw_path.strip(b"/")
            and not self.base_url.host
            and not self.params
            and not self.cookies
        ):
            merged = _merged_headers(self.headers.raw, headers or {})
            if merged is not None:
                timeout = {"timeout": self.timeout.as_dict()}
                return httpx.Request(method, url, content=content, headers=merged, extensions=timeout)
        return super().build_request(method, url, *args, **kwargs)

    def clear(self) -> None:
        """Forget the recorded exchanges (the connections stay open)."""
        self.exchanges.clear()

    def send(self, request: httpx.Request, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        """Send like ``httpx.Client.send``, with timeouts enforced and the exchange recorded."""
        timeout = request.extensions.get("timeout") or {}
        if len(timeout) < 4 or None in timeout.values():  # a limit missing: the client's default stands in
            request.extensions = {**request.extensions, "timeout": _complete(timeout, self.timeout).as_dict()}
        started, t0 = datetime.now(UTC), time.perf_counter()
        direct = self._direct(kwargs)
        try:
            response = self._send_direct(request) if direct else super().send(request, stream=True, **kwargs)
        except Exception as exc:
            self._record(request, started, t0, error=exc)
            raise
        if direct and not stream and isinstance(response.stream, httpx.ByteStream):
            # The whole body is already here: record it at once, no pass-through wrapper needed.
            raw = b"".join(response.stream)
            response.read()
            self._record_body(
                request,
                started,
                t0,
                response.status_code,
                response.headers,
                raw[: self._capture],
                len(raw),
                complete=len(raw) <= self._capture,
            )
            return response
        assert isinstance(response.stream, httpx.SyncByteStream)
        on_close = partial(self._record_response, response.request, started, t0, response.status_code, response.headers)
        response.stream = _RecordingStream(response.stream, self._capture, on_close)
        if not stream:
            try:
                response.read()
            except BaseException:
                response.close()
                raise
        return response

    def _direct(self, kwargs: dict[str, Any]) -> bool:
        """Whether httpx's auth, redirect, cookie and hook layers have nothing to do for this request."""
        return (
            self.auth is None
            and kwargs.get("auth", httpx.USE_CLIENT_DEFAULT) in (httpx.USE_CLIENT_DEFAULT, None)
            and kwargs.get("follow_redirects", httpx.USE_CLIENT_DEFAULT) in (httpx.USE_CLIENT_DEFAULT, False)
            and not self.cookies
            and not self._event_hooks["request"]
            and not self._event_hooks["response"]
        )

    def _send_direct(self, request: httpx.Request) -> httpx.Response:
        """Straight to the transport: the layers it skips cost more CPU than the exchange itself.

        Cookies a vendor sets are not kept: separate deliveries must not share a session.
        """
        response = self._transport_for_url(request.url).handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.request = request
        response.default_encoding = self._default_encoding
        return response

    def _record_response(
        self,
        request: httpx.Request,
        started: datetime,
        t0: float,
        status: int,
        headers: httpx.Headers,
        body: _RecordingStream,
    ) -> None:
        self._record_body(
            request,
            started,
            t0,
            status,
            headers,
            bytes(body.head),
            body.size,
            complete=body.finished and body.size <= self._capture,
            error=body.error,
        )

    def _record_body(
        self,
        request: httpx.Request,
        started: datetime,
        t0: float,
        status: int,
        headers: httpx.Headers,
        head: bytes,
        size: int,
        *,
        complete: bool,
        error: Exception | None = None,
    ) -> None:
        """Record an exchange from the first bytes of its body as received (``size`` counts them all)."""
        encoding = headers.get("Content-Encoding", "identity").strip().lower()
        content = head
        if encoding != "identity":
            try:  # decode the captured head the way httpx decodes the body, gzip and all
                content = httpx.Response(200, headers={"Content-Encoding": encoding}, content=content).content
            except httpx.DecodingError:
                content = b""
        self._record(
            request,
            started,
            t0,
            status=status,
            response_headers=headers,
            response_body=self._clip(content, complete=complete),
            response_body_size=size,
            error=error,
        )

    def _record(
        self,
        request: httpx.Request,
        started: datetime,
        t0: float,
        *,
        status: int | None = None,
        response_headers: httpx.Headers | None = None,
        response_body: str = "",
        response_body_size: int | None = None,
        error: Exception | None = None,
    ) -> None:
        try:
            content = request.content
            size = len(content)
        except httpx.RequestNotRead:  # a streamed upload: its bytes are gone, only the size is known
            content, length = b"", request.headers.get("Content-Length", "")
            size = int(length) if length.isdigit() else 0
        self.exchanges.append(
            RecordedExchange(
                started_at=started,
                duration_ms=(time.perf_counter() - t0) * 1000.0,
                method=request.method,
                url=self._mask_url(request.url),
                request_headers=self._mask_headers(request.headers),
                request_body=self._clip(content[: self._capture], complete=size <= self._capture),
                request_body_size=size,
                status_code=status,
                response_headers=self._mask_headers(response_headers) if response_headers is not None else {},
                response_body=response_body,
                response_body_size=response_body_size,
                error=None if error is None else redact(_describe(error), self._secrets),
            )
        )

    def _clip(self, content: bytes, *, complete: bool) -> str:
        text = content.decode("utf-8", errors="replace")
        keep = self._body_limit + self._longest  # masked and redacted: only what can be shown, and a margin
        if len(text) > keep:
            text, complete = text[:keep], False
        text = redact(mask_credential_fields(text), self._secrets)
        if not complete and self._longest > 1:  # the cut may split a secret: drop what could be its head
            text = text[: max(len(text) - self._longest + 1, 0)]
        return text[: self._body_limit]

    def _mask_headers(self, headers: httpx.Headers) -> dict[str, str]:
        return {
            name: MASK if sensitive_header(name) else redact(value, self._secrets) for name, value in headers.items()
        }

    def _mask_url(self, url: httpx.URL) -> str:
        return _remember(self._masked_urls, url, self._masked_url)

    def _masked_url(self, url: httpx.URL) -> str:
        parts = urlsplit(str(url))
        netloc = parts.netloc
        if parts.password:
            netloc = netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
        params = (p.partition("=") for p in parts.query.split("&")) if parts.query else ()
        query = "&".join(
            f"{k}={MASK}" if eq and sensitive_header(unquote_plus(k)) else k + eq + v for k, eq, v in params
        )
        return redact(urlunsplit(parts._replace(netloc=netloc, query=query)), self._secrets)


_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


def _remember(cache: dict[_K, _V], key: _K, make: Callable[[_K], _V]) -> _V:
    """``cache[key]``, made by ``make`` the first time; the cache starts over past 256 entries (a client
    talks to a few URLs all day, so it stays small without an eviction policy)."""
    value = cache.get(key)
    if value is None:
        if len(cache) >= 256:
            cache.clear()
        value = cache[key] = make(key)
    return value


def _merged_headers(defaults: list[tuple[bytes, bytes]], given: dict[Any, Any]) -> list[tuple[bytes, bytes]] | None:
    """``defaults`` without the names in ``given``, then ``given``: as ``httpx.Headers.update`` merges them.

    ``None`` unless every name and value in ``given`` is ASCII text (httpx's own path handles the rest).
    """
    added: list[tuple[bytes, bytes]] = []
    for name, value in given.items():
        if not isinstance(name, str) or not isinstance(value, str) or not (name.isascii() and value.isascii()):
            return None
        added.append((name.encode(), value.encode()))
    names = {name.lower() for name, _ in added}
    return [(name, value) for name, value in defaults if name.lower() not in names] + added


def recording_client(
    *,
    secrets: Iterable[str] = (),
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    body_limit: int = 16_384,
    transport: httpx.BaseTransport | None = None,
) -> RecordingClient:
    """The client the core puts in ``ctx.http``.

    ``secrets`` are the decrypted secret settings of the integration: every occurrence (also URL- or
    JSON-escaped) is masked in the record. ``body_limit`` caps each stored body, in characters.
    ``transport`` lets tests and the fault proxy stand in for the network.
    """
    return RecordingClient(secrets=secrets, timeout=timeout, body_limit=body_limit, transport=transport)


def _describe(error: Exception) -> str:
    """``"ReadTimeout: timed out"``, or the bare class name when the exception says nothing more."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _complete(timeout: Any, default: httpx.Timeout) -> httpx.Timeout:
    """``timeout`` (a ``Timeout.as_dict()``) with each missing or ``None`` limit taken from ``default``."""
    return httpx.Timeout(
        **{key: timeout.get(key) if timeout.get(key) is not None else value for key, value in default.as_dict().items()}
    )


def _secret_forms(secrets: Iterable[str]) -> list[str]:
    """Each secret as it may appear in a record: raw, URL-encoded, JSON-escaped; longest first."""
    forms = {f for s in secrets for f in (s, quote(s), quote(s, safe=""), quote_plus(s), json.dumps(s)[1:-1])}
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


def parse_retry_after(value: str | None, now: datetime | None = None, cap: float = 3600.0) -> float | None:
    """Seconds to wait according to a ``Retry-After`` value (seconds or an HTTP date), or ``None``.

    Never negative, never more than ``cap``: a vendor's wish must not park a delivery for a week.
    ``now`` is the clock for HTTP dates (tests pass one). Unparseable values give ``None``.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" means UTC for HTTP dates
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), cap)


_TOKENISH = re.compile(r"[A-Za-z0-9_\-+/=]{24,}")


def _excerpt(response: httpx.Response, limit: int = 200) -> str:
    """A short, one-line excerpt of a response body for an error message.

    Vendors sometimes echo the credential they rejected, and this function does not know the secrets:
    long runs of letters and digits (keys, tokens, JWT parts) are masked.
    """
    try:
        text = response.content[: 4 * limit].decode("utf-8", errors="replace")
    except httpx.ResponseNotRead:
        return ""
    text = " ".join(text.split())
    text = _TOKENISH.sub(
        lambda m: MASK if re.search(r"\d", m[0]) and re.search(r"[A-Za-z]", m[0]) else m[0],
        text,
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def raise_for_status(response: httpx.Response, *, setting: str | None = None) -> None:
    """Return on 1xx/2xx and 304; otherwise raise the typed error the core acts on.

    * other 3xx: :class:`PermanentError` — redirects are not followed, so the URL needs fixing;
    * 429, 408, 425 and 5xx: :class:`TransientError` with ``delay`` from ``Retry-After`` (or ``None``);
    * 401, 403: :class:`PermanentError` naming ``setting`` (the credential setting, e.g. ``"apiKey"``);
    * any other 4xx: :class:`PermanentError` with the status and an excerpt of the vendor's answer.

    Messages never echo the request, so they cannot carry its credentials.
    """
    status = response.status_code
    if status < 300 or status == 304:
        return
    if status < 400:
        hint = f"; update settings.{setting}" if setting else ""
        location = response.headers.get("Location", "")
        raise PermanentError(f"the endpoint redirected (HTTP {status} to {location or '?'}){hint}", setting=setting)
    excerpt = _excerpt(response)
    detail = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
    if status in (408, 425, 429) or status >= 500:
        delay = parse_retry_after(response.headers.get("Retry-After"))
        raise TransientError(f"vendor unavailable ({detail})", delay=delay)
    if status in (401, 403):
        hint = f" — check settings.{setting}" if setting else ""
        raise PermanentError(f"authentication failed (HTTP {status}){hint}", setting=setting)
    raise PermanentError(f"vendor rejected the request ({detail})")


def transient_from_transport_error(exc: httpx.TransportError) -> TransientError:
    """A :class:`TransientError` for a timeout, refused or reset connection: the vendor may be back soon.

    The message names the host and the kind of failure only, never the URL (it may hold a key).
    """
    try:
        host = exc.request.url.host or "the vendor"
    except RuntimeError:  # an error raised outside a request
        host = "the vendor"
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"request to {host} timed out: {type(exc).__name__}")
    return TransientError(f"connection to {host} failed: {type(exc).__name__}")
