"""RevenueCat's REST API v2 as the connector speaks it: base URL, Bearer key, paging, pacing, error classes.

Every answer goes through :func:`raise_for_answer`, which turns RevenueCat's status and error body
(``{type, message, retryable, doc_url, backoff_ms?}``) into the typed errors the core acts on:

* 429, 5xx, 408/423/425, or any error whose body says ``retryable: true``: :class:`TransientError`, its
  delay from ``Retry-After`` (seconds) or else the body's ``backoff_ms``;
* 401/403: :class:`PermanentError` naming ``apiKey``; 404: :class:`ResourceMissing`; a 400 about
  ``starting_after``: :class:`BadCursor`;
* any other 4xx (and a redirect, which is not followed): :class:`PermanentError`.

Lists are ``{object: "list", items, next_page, url}``; ``next_page`` (absent or null on the last page)
is ``/v2/...?starting_after=<last id>``. The connector reads the cursor out of it and asks for the next
page itself, under its own base URL: a proxy prefix in ``baseUrl`` survives, and the key is never sent
to a host taken from a response.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from interlink.connector import ConnectorContext, PermanentError, TransientError
from interlink.http import parse_retry_after

from ._pacing import Pacer

__all__ = [
    "CUSTOMER_INFORMATION",
    "PROJECT_CONFIGURATION",
    "BadCursor",
    "Page",
    "ResourceMissing",
    "RevenueCatApi",
    "api_root",
    "raise_for_answer",
]

DEFAULT_BASE_URL = "https://api.revenuecat.com"
CUSTOMER_INFORMATION = "customer_information"
PROJECT_CONFIGURATION = "project_configuration"
_TRANSIENT = frozenset({408, 423, 425, 429})


class ResourceMissing(PermanentError):
    """RevenueCat answered 404 (``resource_missing``): a project, a customer that is not there."""


class BadCursor(PermanentError):
    """RevenueCat refused the ``starting_after`` cursor (a 400 naming that parameter)."""


def api_root(settings: Mapping[str, Any]) -> str:
    """``baseUrl`` without a trailing ``/v2``: both "the host" and "the v2 base" readings of it work."""
    url = str(settings.get("baseUrl") or DEFAULT_BASE_URL).strip().rstrip("/")
    return url.removesuffix("/v2")


def _authorization(settings: Mapping[str, Any]) -> str:
    key = str(settings.get("apiKey") or "").strip()
    if key[:7].lower() == "bearer ":  # a key pasted with its scheme
        key = key[7:].strip()
    if not key:
        raise PermanentError(
            "No API key — set settings.apiKey to a RevenueCat v2 secret key (sk_...)", setting="apiKey"
        )
    return f"Bearer {key}"


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _describe(status: int, error: Mapping[str, Any]) -> str:
    kind, message = error.get("type"), error.get("message")
    text = ": ".join(str(p) for p in (kind, message) if isinstance(p, str) and p)
    return f"HTTP {status}" + (f", {text[:200]}" if text else "")


def _delay(response: httpx.Response, error: Mapping[str, Any]) -> float | None:
    delay = parse_retry_after(response.headers.get("Retry-After"))
    backoff = error.get("backoff_ms")
    if delay is None and isinstance(backoff, int | float) and not isinstance(backoff, bool) and backoff >= 0:
        delay = min(float(backoff) / 1000.0, 3600.0)
    return delay


def raise_for_answer(response: httpx.Response) -> None:
    """Return on 2xx; otherwise raise the typed error (see the module's docstring)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    error = _error_body(response)
    detail = _describe(status, error)
    if status in _TRANSIENT or status >= 500 or error.get("retryable") is True:
        what = "RevenueCat's rate limit was reached" if status == 429 else "RevenueCat is unavailable"
        raise TransientError(f"{what} ({detail})", delay=_delay(response, error))
    if status == 401:
        raise PermanentError(f"Invalid API key — update settings.apiKey ({detail})", setting="apiKey")
    if status == 403:
        raise PermanentError(
            "The API key lacks a permission — update settings.apiKey with a v2 secret key that can read "
            f"customer information and project configuration ({detail})",
            setting="apiKey",
        )
    if status == 404:
        raise ResourceMissing(f"RevenueCat found no such resource ({detail})")
    if status == 400 and error.get("param") == "starting_after":
        raise BadCursor(f"RevenueCat refused the page cursor ({detail})")
    if status < 400:
        raise PermanentError(
            f"RevenueCat redirected the request (HTTP {status}) — check settings.baseUrl", setting="baseUrl"
        )
    raise PermanentError(f"RevenueCat rejected the request ({detail})")


@dataclass(frozen=True)
class Page:
    """One page of a list: its items and the cursor of the next page (``None`` on the last one)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def _next_cursor(body: Mapping[str, Any], items: list[dict[str, Any]]) -> str | None:
    next_page = body.get("next_page")
    if not isinstance(next_page, str) or not next_page:
        return None
    found = parse_qs(urlsplit(next_page).query).get("starting_after")
    if found and found[0]:
        return found[0]
    last = items[-1].get("id") if items else None  # starting_after is documented as the last item's id
    return str(last) if last is not None else None


class RevenueCatApi:
    """The calls of one connector method: one base URL and key, one pacer for the rate limits."""

    def __init__(self, ctx: ConnectorContext, sleep: Callable[[float], None]) -> None:
        self._http = ctx.http
        self._root = api_root(ctx.settings)
        self._headers = {"Authorization": _authorization(ctx.settings), "Accept": "application/json"}
        self.pacer = Pacer(clock=lambda: float(ctx.now().timestamp()), sleep=sleep)

    def get(self, path: str, params: Mapping[str, str | int] | None, *, domain: str) -> dict[str, Any]:
        """GET ``/v2{path}`` and return its JSON object, or raise the typed error of the answer."""
        self.pacer.before(domain)
        response = self._http.get(f"{self._root}/v2{path}", params=dict(params or {}), headers=self._headers)
        self.pacer.after(domain, response.headers)
        raise_for_answer(response)
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PermanentError(
                f"the answer to GET /v2{path.split('?')[0]} is not a RevenueCat JSON object — check settings.baseUrl",
                setting="baseUrl",
            )
        return body

    def page(self, path: str, *, after: str | None, limit: int | None, domain: str) -> Page:
        """One page of the list at ``path``, starting after the item ``after``."""
        params: dict[str, str | int] = {}
        if limit:
            params["limit"] = limit
        if after:
            params["starting_after"] = after
        body = self.get(path, params, domain=domain)
        raw = body.get("items")
        if not isinstance(raw, list):
            raise PermanentError(f"the answer to GET /v2{path} is not a list object (no 'items')")
        items = [item for item in raw if isinstance(item, dict)]
        return Page(items, _next_cursor(body, items))

    def each(self, path: str, *, limit: int | None, domain: str) -> Iterator[dict[str, Any]]:
        """Every item of the list at ``path``, page by page to the end; one page in memory at a time."""
        after: str | None = None
        while True:
            page = self.page(path, after=after, limit=limit, domain=domain)
            yield from page.items
            if page.next_cursor is None or page.next_cursor == after:
                return
            after = page.next_cursor
