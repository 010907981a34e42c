"""A RevenueCat REST API v2 emulator (``vendors.md`` section 2), and RevenueCat's webhook sender.

What it follows:

* auth: ``Authorization: Bearer <api_key>``; anything else is a 401 ``authentication_error``. Keys in
  :attr:`RevenueCatEmulator.forbidden_keys` are known but lack permissions: 403 ``authorization_error``.
  Every error body is ``{object: "error", type, message, retryable, doc_url}`` (+ ``backoff_ms`` when
  retryable);
* endpoints: ``GET /v2/projects``, ``GET /v2/projects/{pid}/customers`` (``limit``, ``starting_after``,
  ``search`` by exact e-mail), ``GET .../customers/{cid}`` (``expand=attributes``),
  ``GET .../customers/{cid}/subscriptions`` (``environment``) and ``.../purchases``; unknown ones get 404
  ``resource_missing``;
* lists: ``{object: "list", items, next_page, url}``, ``next_page`` absent on the last page, default
  ``limit`` 20; items are in id order and ``starting_after`` takes any id (the items after it);
* rate limits: per domain (``customer_information`` 480/min, ``project_configuration`` 60/min), counted
  in one-minute periods that start with their first request; each success carries
  ``RevenueCat-Rate-Limit-Current-Usage``/``-Current-Limit``, and a request over the limit gets 429 with
  ``Retry-After`` (seconds to the period's end) and ``backoff_ms``. :meth:`set_limit` changes a limit;
  ``clock`` lets a test drive the periods;
* webhooks: :meth:`send_webhook` posts ``{"api_version": "1.0", "event": ...}`` with the configured
  Authorization value (RevenueCat does not sign), :meth:`webhook_event` builds a documented event.

Seed data with :meth:`add_customer`.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, unquote

import httpx

from interlink.testing.emulators.base import Emulator, Request, Response

__all__ = ["RevenueCatEmulator"]

LIMITS = {"customer_information": 480, "project_configuration": 60}
_WINDOW = 60.0
_DOCS = "https://errors.rev.cat/"
_NO_HEADER = object()


@dataclass
class _Customer:
    record: dict[str, Any]
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    purchases: list[dict[str, Any]] = field(default_factory=list)


def _error(
    status: int, kind: str, message: str, *, backoff_ms: int | None = None, param: str | None = None
) -> Response:
    body: dict[str, Any] = {
        "object": "error",
        "type": kind,
        "message": message,
        "retryable": backoff_ms is not None,
        "doc_url": _DOCS + kind.replace("_", "-"),
    }
    if param is not None:
        body["param"] = param
    if backoff_ms is not None:
        body["backoff_ms"] = backoff_ms
    return Response(status, body)


class RevenueCatEmulator(Emulator):
    """RevenueCat v2 on 127.0.0.1: one project (:attr:`project_id`) whose customers tests add."""

    service: ClassVar[str] = "revenuecat"
    default_api_key: ClassVar[str] = "sk_emulator_0123456789abcdef"
    default_webhook_secret: ClassVar[str] = "Bearer rc-emulator-webhook-authorization"  # noqa: S105

    def __init__(
        self,
        *,
        api_key: str | None = None,
        webhook_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        project_id: str = "proj1a2b3c4d",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(api_key=api_key, webhook_secret=webhook_secret, host=host, port=port)
        self.project_id = project_id
        self.clock = clock
        """The time the rate-limit periods are counted in (seconds); tests may pass their own."""
        self.forbidden_keys: set[str] = set()
        self.limits: dict[str, int] = dict(LIMITS)
        self._periods: dict[str, tuple[float, int]] = {}
        self._customers: dict[str, _Customer] = {}
        self._sequence = 0

    @property
    def webhook_authorization(self) -> str:
        """The Authorization header value webhooks are sent with (the dashboard's setting)."""
        return self.webhook_secret

    # -- seeding ----------------------------------------------------------------------------------

    def _next(self) -> int:
        with self.lock:
            self._sequence += 1
            return self._sequence

    def add_customer(
        self,
        customer_id: str | None = None,
        *,
        subscriptions: int | list[dict[str, Any]] = 0,
        purchases: int | list[dict[str, Any]] = 0,
        email: str | None = None,
        first_seen_at: int = 1_700_000_000_000,
    ) -> str:
        """Add a customer with ``subscriptions``/``purchases`` (a count, or fields to set on each); its id."""
        n = self._next()
        cid = customer_id or f"user-{n:05d}"
        attributes = [] if email is None else [{"object": "customer.attribute", "name": "$email", "value": email}]
        record = {
            "object": "customer",
            "id": cid,
            "project_id": self.project_id,
            "first_seen_at": first_seen_at + n,
            "last_seen_at": first_seen_at + n + 86_400_000,
            "attributes": {"object": "list", "items": attributes, "url": ""},
        }
        customer = _Customer(record)
        for extra in [{}] * subscriptions if isinstance(subscriptions, int) else subscriptions:
            customer.subscriptions.append({**self._subscription(cid, first_seen_at + n), **extra})
        for extra in [{}] * purchases if isinstance(purchases, int) else purchases:
            customer.purchases.append({**self._purchase(cid, first_seen_at + n), **extra})
        with self.lock:
            self._customers[cid] = customer
        return cid

    def remove_customer(self, customer_id: str) -> None:
        """Delete a customer (its later lookups answer 404)."""
        with self.lock:
            self._customers.pop(customer_id, None)

    def subscriptions_of(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's subscription objects (mutable: a test may renew one)."""
        return self._customers[customer_id].subscriptions

    def purchases_of(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's one-time purchase objects."""
        return self._customers[customer_id].purchases

    def _subscription(self, cid: str, start: int) -> dict[str, Any]:
        n = self._next()
        return {
            "object": "subscription",
            "id": f"sub{n:08d}",
            "customer_id": cid,
            "original_customer_id": cid,
            "product_id": "prod1a2b3c4d5e",
            "starts_at": start,
            "current_period_starts_at": start + 30 * 86_400_000,
            "current_period_ends_at": start + 60 * 86_400_000,
            "gives_access": True,
            "pending_payment": False,
            "auto_renewal_status": "will_renew",
            "status": "active",
            "total_revenue_in_usd": {"currency": "USD", "gross": 9.99, "commission": 3.0, "tax": 0.0, "proceeds": 6.99},
            "presented_offering_id": None,
            "entitlements": {"object": "list", "items": [], "url": ""},
            "environment": "production",
            "store": "app_store",
            "store_subscription_identifier": f"1000000{n:08d}",
            "ownership": "purchased",
            "country": "US",
            "management_url": "https://apps.apple.com/account/subscriptions",
        }

    def _purchase(self, cid: str, at: int) -> dict[str, Any]:
        n = self._next()
        return {
            "object": "purchase",
            "id": f"purch{n:08d}",
            "customer_id": cid,
            "original_customer_id": cid,
            "product_id": "prod9z8y7x6w5v",
            "purchased_at": at + n,
            "revenue_in_usd": {"currency": "USD", "gross": 4.99, "commission": 1.5, "tax": 0.0, "proceeds": 3.49},
            "quantity": 1,
            "status": "owned",
            "presented_offering_id": None,
            "entitlements": {"object": "list", "items": [], "url": ""},
            "environment": "production",
            "store": "play_store",
            "store_purchase_identifier": f"GPA.{n:04d}-0000",
            "ownership": "purchased",
            "country": "DE",
        }

    # -- what the conformance suite asks ----------------------------------------------------------

    webhook_signed: ClassVar[bool] = False  # an Authorization value, nothing covers the body
    webhook_timestamped: ClassVar[bool] = False

    def integration_settings(self) -> dict[str, Any]:
        # pageSize 20 (the API's default): the suite's generated example would take the minimum, 1.
        return {
            "baseUrl": self.url,
            "apiKey": self.api_key,
            "projectId": self.project_id,
            "webhookAuthorization": self.webhook_authorization,
            "pageSize": 20,
        }

    def webhook_headers(self, body: bytes, *, secret: str | None = None, sent_at: int | None = None) -> dict[str, str]:
        return {"Content-Type": "application/json", "Authorization": secret or self.webhook_authorization}

    def sample_webhook(self) -> bytes:
        return json.dumps({"api_version": "1.0", "event": self.webhook_event("INITIAL_PURCHASE", "user-42")}).encode()

    def seed_records(self, count: int) -> None:
        """Customers of 1 record plus up to 19 subscriptions each: ``count`` records in few requests."""
        while count > 0:
            self.add_customer(subscriptions=min(count, 20) - 1)
            count -= min(count, 20)

    # -- the vendor's contract --------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        sent = request.headers.get("authorization", "")
        scheme, _, key = sent.partition(" ")
        if scheme != "Bearer" or not key:
            return _error(401, "authentication_error", "Authorization header must be 'Bearer <API key>'")
        if key in self.forbidden_keys:
            return _error(403, "authorization_error", "You're not authorized to access this resource")
        if key != self.api_key:
            return _error(401, "authentication_error", "Invalid API key")
        return None

    def rate_limited(self, retry_after: int) -> Response:
        response = _error(429, "rate_limit_error", "Rate limit exceeded", backoff_ms=retry_after * 1000)
        response.headers["Retry-After"] = str(retry_after)
        return response

    def set_limit(self, domain: str, per_minute: int) -> None:
        """Change a domain's requests-per-minute limit (and start a fresh period)."""
        with self.lock:
            self.limits[domain] = per_minute
            self._periods.pop(domain, None)

    def spend(self, domain: str, requests: int) -> None:
        """Count ``requests`` made in ``domain`` by another client of the same key (they share the limit)."""
        for _ in range(requests):
            self._count(domain)

    def _count(self, domain: str) -> tuple[int, int, int | None]:
        """Count a request in ``domain``: (usage, limit, seconds to wait when over the limit)."""
        with self.lock:
            now = self.clock()
            start, used = self._periods.get(domain, (now, 0))
            if now >= start + _WINDOW:
                start, used = now, 0
            limit = self.limits.get(domain, 60)
            if used >= limit:
                self._periods[domain] = (start, used)
                return used, limit, max(1, math.ceil(start + _WINDOW - now))
            self._periods[domain] = (start, used + 1)
            return used + 1, limit, None

    def route(self, request: Request) -> Response:
        if request.method != "GET":
            return _error(404, "resource_missing", f"{request.method} {request.path} is not emulated")
        parts = [unquote(p) for p in request.path.split("/") if p]
        if parts[:2] != ["v2", "projects"]:
            return _error(404, "resource_missing", "Not found")
        domain = "project_configuration" if len(parts) == 2 else "customer_information"
        usage, limit, wait = self._count(domain)
        if wait is not None:
            return self.rate_limited(wait)
        response = self._answer(request, parts[2:])
        if response.status < 400:
            response.headers["RevenueCat-Rate-Limit-Current-Usage"] = str(usage)
            response.headers["RevenueCat-Rate-Limit-Current-Limit"] = str(limit)
        return response

    def _answer(self, request: Request, rest: list[str]) -> Response:
        if not rest:
            project = {"object": "project", "id": self.project_id, "name": "Emulated", "created_at": 1_600_000_000_000}
            return self._list(request, "/v2/projects", [project])
        if rest[0] != self.project_id:
            return _error(404, "resource_missing", "Project not found", param="project_id")
        base = f"/v2/projects/{quote(self.project_id, safe='')}/customers"
        if rest[1:] == ["customers"]:
            with self.lock:
                records = [c.record for c in self._customers.values()]
            search = request.arg("search")
            if search is not None:
                records = [r for r in records if any(a.get("value") == search for a in r["attributes"]["items"])]
            return self._list(request, base, [_without_attributes(r) for r in records])
        if len(rest) < 3 or rest[1] != "customers":
            return _error(404, "resource_missing", "Not found")
        with self.lock:
            customer = self._customers.get(rest[2])
        if customer is None:
            return _error(404, "resource_missing", "Customer not found", param="customer_id")
        path = f"{base}/{quote(rest[2], safe='')}"
        if len(rest) == 3:
            wants = "attributes" in request.query.get("expand", [])
            return Response(200, customer.record if wants else _without_attributes(customer.record))
        if rest[3:] == ["subscriptions"]:
            environment = request.arg("environment")
            items = [s for s in customer.subscriptions if environment in (None, s["environment"])]
            return self._list(request, f"{path}/subscriptions", items)
        if rest[3:] == ["purchases"]:
            return self._list(request, f"{path}/purchases", customer.purchases)
        return _error(404, "resource_missing", "Not found")

    def _list(self, request: Request, url: str, items: list[dict[str, Any]]) -> Response:
        raw_limit = request.arg("limit", "20") or "20"
        if not raw_limit.isdigit() or int(raw_limit) < 1:
            return _error(400, "parameter_error", "limit must be a positive integer", param="limit")
        limit = int(raw_limit)
        ordered = sorted(items, key=lambda item: str(item["id"]))
        after = request.arg("starting_after")
        if after is not None:
            ordered = [item for item in ordered if str(item["id"]) > after]
        page = ordered[:limit]
        body: dict[str, Any] = {"object": "list", "items": page, "url": url}
        if len(ordered) > limit:
            body["next_page"] = f"{url}?starting_after={quote(str(page[-1]['id']), safe='')}"
        return Response(200, body)

    # -- webhooks ---------------------------------------------------------------------------------

    def webhook_event(self, event_type: str, app_user_id: str, **fields: Any) -> dict[str, Any]:
        """A webhook event with the documented common and purchase fields; ``fields`` override them."""
        now_ms = int(time.time() * 1000)
        return {
            "id": str(uuid.uuid4()).upper(),
            "type": event_type,
            "app_id": "app1a2b3c4",
            "event_timestamp_ms": now_ms,
            "app_user_id": app_user_id,
            "original_app_user_id": app_user_id,
            "aliases": [app_user_id],
            "subscriber_attributes": {},
            "product_id": "premium_monthly",
            "period_type": "NORMAL",
            "purchased_at_ms": now_ms - 1000,
            "expiration_at_ms": now_ms + 30 * 86_400_000,
            "environment": "PRODUCTION",
            "entitlement_ids": ["premium"],
            "presented_offering_id": None,
            "transaction_id": "170000" + str(now_ms)[-9:],
            "original_transaction_id": "170000" + str(now_ms)[-9:],
            "is_family_share": False,
            "country_code": "US",
            "currency": "USD",
            "price": 9.99,
            "price_in_purchased_currency": 9.99,
            "takehome_percentage": 0.7,
            "store": "APP_STORE",
            **fields,
        }

    def send_webhook(self, url: str, event: Mapping[str, Any], *, authorization: Any = _NO_HEADER) -> httpx.Response:
        """POST ``event`` to ``url`` as RevenueCat does: with :attr:`webhook_authorization`, unless
        ``authorization`` is given (``None`` sends no Authorization header)."""
        value = self.webhook_authorization if authorization is _NO_HEADER else authorization
        headers = {"Content-Type": "application/json", "User-Agent": "RevenueCat"}
        if value is not None:
            headers["Authorization"] = str(value)
        body = {"api_version": "1.0", "event": dict(event)}
        with httpx.Client(timeout=60.0) as client:  # RevenueCat gives up after 60 s
            return client.post(url, json=body, headers=headers)


def _without_attributes(record: Mapping[str, Any]) -> dict[str, Any]:
    """A customer as lists show it: attributes are expandable on "Get a customer" only."""
    return {k: v for k, v in record.items() if k != "attributes"}
