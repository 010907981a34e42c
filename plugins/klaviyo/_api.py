"""Talking to Klaviyo's REST API: the headers every call carries, and what its answers mean.

Every call carries ``Authorization: Klaviyo-API-Key <apiKey>``, the ``revision`` header Klaviyo requires,
and the JSON:API media type. Answers are classified the way Klaviyo documents them (vendors.md §8):

* 2xx: success. Klaviyo reports its steady rate-limit window on every non-429 answer
  (``RateLimit-Limit/Remaining/Reset``); when ``Remaining`` reaches 0 we log it at debug and carry on —
  the next call may get a 429, which is handled below. We do not sleep pre-emptively: a worker must not
  hold an event for up to a minute when the core's retry schedule does the waiting for free.
* 429: :class:`TransientError` with the delay of ``Retry-After`` (a 429 carries no ``RateLimit-*``).
* 5xx (Klaviyo and its edge answer 500, 502, 503, 504 and 524): transient.
* 401/403: :class:`PermanentError` naming ``apiKey``; other 4xx: permanent, with Klaviyo's JSON:API
  error ``detail`` and the field it points at, and naming ``revision`` when the revision was refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from interlink.connector import ConnectorContext, PermanentError, TransientError
from interlink.http import parse_retry_after, transient_from_transport_error

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_REVISION", "INVALID_KEY", "MEDIA_TYPE", "KlaviyoApi", "classify"]

DEFAULT_BASE_URL = "https://a.klaviyo.com"
DEFAULT_REVISION = "2026-07-15"
"""The revision the connector is written against (the manifest's default for ``settings.revision``)."""
MEDIA_TYPE = "application/vnd.api+json"
INVALID_KEY = "Invalid API key — update settings.apiKey"

_FIRST_INT = re.compile(r"\d+")


class KlaviyoApi:
    """The calls of one connector invocation: base URL and headers from the settings, through ``ctx.http``."""

    def __init__(self, ctx: ConnectorContext) -> None:
        self.ctx = ctx
        key = ctx.settings.get("apiKey")
        if not isinstance(key, str) or not key.strip():
            raise PermanentError("No API key — set settings.apiKey to a Klaviyo private API key", setting="apiKey")
        self.base_url = str(ctx.settings.get("baseUrl") or DEFAULT_BASE_URL).rstrip("/")
        revision = ctx.settings.get("revision")
        self.headers = {
            "Authorization": f"Klaviyo-API-Key {key.strip()}",
            "revision": str(revision) if revision else DEFAULT_REVISION,
            "Accept": MEDIA_TYPE,
        }

    def url(self, path: str) -> str:
        """The absolute URL of an API path (``/api/events``) under the configured base URL."""
        return self.base_url + path

    def get(self, path: str, params: Mapping[str, str] | str | None = None) -> httpx.Response:
        """GET ``path``; ``params`` as a mapping, or a query string taken as is (from a ``links.next``)."""
        return self._send("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, Any]) -> httpx.Response:
        """POST a JSON:API document to ``path``."""
        return self._send("POST", path, json=body)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(self.headers)
        if "json" in kwargs:
            headers["Content-Type"] = MEDIA_TYPE
        try:
            response = self.ctx.http.request(method, self.url(path), headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise transient_from_transport_error(exc) from None
        classify(response)
        self._note_rate_limit(response, path)
        return response

    def _note_rate_limit(self, response: httpx.Response, path: str) -> None:
        remaining = _first_int(response.headers.get("RateLimit-Remaining"))
        if remaining == 0:
            reset = _first_int(response.headers.get("RateLimit-Reset"))
            self.ctx.logger.debug(
                "klaviyo: steady rate-limit window of %s exhausted (limit %s); it resets in %s s",
                path,
                response.headers.get("RateLimit-Limit", "?"),
                "?" if reset is None else reset,
            )


def classify(response: httpx.Response) -> None:
    """Return on 2xx; raise the typed error a Klaviyo answer means otherwise."""
    status = response.status_code
    if 200 <= status < 300:
        return
    detail, pointer, parameter = _error_detail(response)
    described = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429:
        delay = parse_retry_after(response.headers.get("Retry-After"))
        raise TransientError(f"Klaviyo rate limit reached ({described})", delay=delay)
    if status >= 500 or status in (408, 425):
        delay = parse_retry_after(response.headers.get("Retry-After"))
        raise TransientError(f"Klaviyo unavailable ({described})", delay=delay)
    if status == 401:
        raise PermanentError(INVALID_KEY, setting="apiKey")
    if status == 403:
        raise PermanentError(
            f"The API key may not do this — update settings.apiKey with a key that has the needed scopes ({described})",
            setting="apiKey",
        )
    if 300 <= status < 400:
        raise PermanentError(f"Klaviyo redirected (HTTP {status}) — check settings.baseUrl", setting="baseUrl")
    if parameter == "revision" or (status == 400 and "revision" in detail.lower()):
        raise PermanentError(
            f"Klaviyo refused the API revision — update settings.revision ({described})", setting="revision"
        )
    where = f" at {pointer}" if pointer else (f" (parameter {parameter})" if parameter else "")
    raise PermanentError(f"Klaviyo rejected the request{where} ({described})")


def _error_detail(response: httpx.Response) -> tuple[str, str, str]:
    """Klaviyo's first JSON:API error: its detail (or title), ``source.pointer`` and ``source.parameter``."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        errors = None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], Mapping):
        return "", "", ""
    first = errors[0]
    source = first.get("source")
    source = source if isinstance(source, Mapping) else {}
    detail = str(first.get("detail") or first.get("title") or first.get("code") or "")
    detail = " ".join(detail.split())[:300]
    return detail, str(source.get("pointer") or ""), str(source.get("parameter") or "")


def _first_int(value: str | None) -> int | None:
    """The first integer of a header value (``"0"``, or ``"0, 0;w=60"`` in the IETF draft's form)."""
    if not value:
        return None
    found = _FIRST_INT.search(value)
    return int(found.group()) if found else None
