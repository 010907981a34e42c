"""One request to Stripe through ``ctx.http``, and the reading of Stripe's answers into the typed errors.

Stripe's contract (``vendors.md`` section 1): ``Authorization: Bearer <key>``, optional ``Stripe-Account``
and ``Stripe-Version`` headers, form-encoded POST bodies, errors as ``{"error": {type, code, message,
param}}``. The ``Stripe-Should-Retry`` header, when present, overrides the status: Stripe says whether a
retry can help. ``Retry-After`` is honoured when present, though Stripe is not known to send it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec

from interlink.connector import ConnectorContext, PermanentError, TransientError
from interlink.http import parse_retry_after, raise_for_status, transient_from_transport_error

__all__ = ["DEFAULT_BASE_URL", "StripeApi", "StripeRequestError", "form_pairs", "raise_for_stripe"]

DEFAULT_BASE_URL = "https://api.stripe.com"
INVALID_KEY = "Invalid API key — update settings.apiKey"
_KEYISH = re.compile(r"\b(sk|rk|pk|whsec)_[A-Za-z0-9_*]+")
_TRANSIENT_CODES = frozenset({"rate_limit", "lock_timeout"})


class StripeRequestError(PermanentError):
    """Stripe refused the request for good; ``status``, ``type``, ``code`` and ``param`` are Stripe's."""

    def __init__(self, message: str, *, status: int, error: Mapping[str, Any], setting: str | None = None) -> None:
        super().__init__(message, setting=setting)
        self.status = status
        self.type = str(error.get("type") or "")
        self.code = str(error.get("code") or "")
        self.param = str(error.get("param") or "")


@dataclass(frozen=True)
class StripeApi:
    """Stripe's API at ``base_url`` as the integration's settings describe it; every call goes through ``http``."""

    http: httpx.Client
    base_url: str
    headers: Mapping[str, str]

    @classmethod
    def from_context(cls, ctx: ConnectorContext) -> StripeApi:
        settings = ctx.settings
        headers = {"Authorization": f"Bearer {settings['apiKey']}"}
        if settings.get("accountId"):
            headers["Stripe-Account"] = str(settings["accountId"])
        if settings.get("apiVersion"):
            headers["Stripe-Version"] = str(settings["apiVersion"])
        return cls(ctx.http, str(settings.get("baseUrl") or DEFAULT_BASE_URL).rstrip("/"), headers)

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> dict[str, Any]:
        """``GET path`` with query ``params``; the JSON answer."""
        return self._send("GET", path, params=dict(params or {}))

    def post(self, path: str, form: Mapping[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST path`` with ``form`` encoded as Stripe expects (:func:`form_pairs`); the JSON answer."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return self._send("POST", path, content=urlencode(form_pairs(form)).encode(), headers=headers)

    def _send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        try:
            response = self.http.request(method, self.base_url + path, headers=headers, **kwargs)
        except httpx.TransportError as exc:  # timeout, refused or reset: Stripe may be back soon
            raise transient_from_transport_error(exc) from None
        raise_for_stripe(response)
        try:
            body = msgspec.json.decode(response.content)  # a page of 100 events: a third of json.loads's time
        except msgspec.DecodeError:
            body = None
        if not isinstance(body, dict):
            raise PermanentError(
                f"the answer to {method} {path} is not Stripe's JSON — check settings.baseUrl", setting="baseUrl"
            )
        return body


def raise_for_stripe(response: httpx.Response) -> None:
    """Return on 2xx; otherwise raise :class:`TransientError` or :class:`StripeRequestError`.

    401 and 403 name ``apiKey``; ``Stripe-Should-Retry: true|false`` decides when present; then 409, 429
    (and the legacy 400 ``rate_limit``), 408, 425 and 5xx are transient, with ``Retry-After`` as the delay.
    """
    status = response.status_code
    if status < 300:
        return
    if status < 400:
        raise_for_status(response, setting="baseUrl")  # redirects are not followed: the URL is wrong
    error = _error_object(response)
    detail = _detail(status, error, response.headers.get("Request-Id"))
    if status == 401:
        raise StripeRequestError(INVALID_KEY, status=status, error=error, setting="apiKey")
    if status == 403:
        message = f"the API key may not do this ({detail}) — update settings.apiKey with a key that has the permission"
        raise StripeRequestError(message, status=status, error=error, setting="apiKey")
    delay = parse_retry_after(response.headers.get("Retry-After"))
    should_retry = response.headers.get("Stripe-Should-Retry", "").strip().lower()
    if should_retry == "true":
        raise TransientError(f"Stripe asks to retry ({detail})", delay=delay)
    if should_retry != "false" and (
        status in (408, 409, 425, 429) or status >= 500 or error.get("code") in _TRANSIENT_CODES
    ):
        raise TransientError(f"Stripe is unavailable or busy ({detail})", delay=delay)
    raise StripeRequestError(f"Stripe refused the request ({detail})", status=status, error=error)


def form_pairs(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: nested mappings as ``a[b]``, lists as ``a[0]``, ``None`` as ``""`` (unset)."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            pairs += form_pairs(value, name)
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
            pairs += form_pairs({str(i): item for i, item in enumerate(value)}, name)
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        else:
            pairs.append((name, "" if value is None else str(value)))
    return pairs


def _error_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _detail(status: int, error: Mapping[str, Any], request_id: str | None) -> str:
    """``HTTP 400 invalid_request_error/parameter_unknown on email: <message>; request req_...``, keys masked."""
    kind = "/".join(str(error[k]) for k in ("type", "code") if error.get(k))
    text = f"HTTP {status}" + (f" {kind}" if kind else "")
    if error.get("param"):
        text += f" on {error['param']}"
    message = " ".join(str(error.get("message") or "").split())
    if message:
        text += ": " + _KEYISH.sub(lambda m: f"{m[1]}_********", message[:300])
    return text + (f"; request {request_id}" if request_id else "")
