"""An Adapty server-side API emulator (``vendors.md`` section 3), and Adapty's webhook sender.

What it follows:

* auth: ``Authorization: Api-Key <api_key>``; anything else is 401. Errors are Adapty's
  ``{"errors": [{"source", "errors": [...]}], "error_code", "status_code"}``;
* the profile is named by ``adapty-customer-user-id`` or ``adapty-profile-id`` (neither: 400; unknown: 404);
* ``GET /api/v2/server-side-api/profile/``: ``{"data": profile}``;
* ``POST .../purchase/set/transaction/``: the documented body is validated (400 naming each bad field);
  transactions are keyed on the profile and ``store_transaction_id``, so sending one again updates it
  instead of adding a second, as Adapty does; the product's access level (``premium`` unless
  :attr:`AdaptyEmulator.access_levels` says otherwise) is granted;
* ``POST .../purchase/profile/revoke/access-level/``: ``access_level_id`` required; the access level ends
  at ``revoke_at``, or now;
* rate limits: none documented; :meth:`limit_rate` (base class) answers 429 with ``Retry-After``.

Every accepted write is kept in :attr:`AdaptyEmulator.writes`; :attr:`AdaptyEmulator.transactions` holds
the current transactions. Webhooks: :meth:`send_webhook` posts a flat event with the configured
Authorization value (Adapty does not sign), :meth:`send_handshake` sends ``{"adapty_check": ...}`` and
checks the answer, :meth:`webhook_event` builds a documented event.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from interlink.testing.emulators.base import Emulator, Request, Response

__all__ = ["AdaptyEmulator"]

PREFIX = "/api/v2/server-side-api"
_NO_HEADER = object()
_APP_ID = "14c3d333-2f3a-455a-aa86-ef83dff6913b"


def _error(status: int, code: str, errors: Mapping[str, list[str]]) -> Response:
    body = {
        "errors": [{"source": source, "errors": list(messages)} for source, messages in errors.items()],
        "error_code": code,
        "status_code": status,
    }
    return Response(status, body)


def _is_time(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return isinstance(value, str)


class AdaptyEmulator(Emulator):
    """Adapty's server-side API on 127.0.0.1, with profiles tests add (:meth:`add_profile`)."""

    service: ClassVar[str] = "adapty"
    default_api_key: ClassVar[str] = "secret_live_emulator.0123456789abcdef"
    default_webhook_secret: ClassVar[str] = "adapty-emulator-authorization-value"  # noqa: S105

    def __init__(
        self, *, api_key: str | None = None, webhook_secret: str | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(api_key=api_key, webhook_secret=webhook_secret, host=host, port=port)
        self.profiles: dict[str, dict[str, Any]] = {}
        """Profiles by Adapty profile id."""
        self.transactions: dict[tuple[str, str], dict[str, Any]] = {}
        """The current transaction bodies, by (profile id, store_transaction_id)."""
        self.writes: list[dict[str, Any]] = []
        """Every accepted write, oldest first: ``{"path", "profile_id", "headers", "body"}`` (the full path)."""
        self.access_levels: dict[str, str] = {}
        """Product id to the access level it grants; unlisted products grant ``premium``."""
        self.last_handshake: httpx.Response | None = None

    @property
    def webhook_authorization(self) -> str:
        """The Authorization header value webhooks are sent with (the dashboard's setting)."""
        return self.webhook_secret

    # -- seeding and lookups ----------------------------------------------------------------------

    def add_profile(self, customer_user_id: str | None = None, *, profile_id: str | None = None) -> str:
        """Add a profile (or return the existing one of ``customer_user_id``); its Adapty profile id."""
        with self.lock:
            if customer_user_id is not None:
                found = self._by_user(customer_user_id)
                if found is not None:
                    return str(found["profile_id"])
            pid = profile_id or str(uuid.uuid4())
            self.profiles[pid] = {
                "app_id": _APP_ID,
                "profile_id": pid,
                "customer_user_id": customer_user_id,
                "total_revenue_usd": 0.0,
                "segment_hash": "fdaeef7f8aaa33c9",
                "timestamp": int(time.time() * 1000),
                "custom_attributes": [],
                "access_levels": [],
                "subscriptions": [],
                "non_subscriptions": [],
            }
            return pid

    def _by_user(self, customer_user_id: str) -> dict[str, Any] | None:
        return next((p for p in self.profiles.values() if p["customer_user_id"] == customer_user_id), None)

    def profile_of(self, request: Request) -> dict[str, Any] | Response:
        """The profile the request's headers name, or the error Adapty answers."""
        user, pid = request.headers.get("adapty-customer-user-id"), request.headers.get("adapty-profile-id")
        if not user and not pid:
            message = "adapty-customer-user-id or adapty-profile-id header is required"
            return _error(400, "profile_header_required", {"non_field_errors": [message]})
        with self.lock:
            found = self.profiles.get(pid) if pid else self._by_user(str(user))
        if found is None:
            return _error(404, "profile_does_not_exist", {"non_field_errors": ["Profile not found"]})
        return found

    # -- what the conformance suite asks ----------------------------------------------------------

    webhook_signed: ClassVar[bool] = False  # an Authorization value, nothing covers the body
    webhook_timestamped: ClassVar[bool] = False

    def integration_settings(self) -> dict[str, Any]:
        return {"baseUrl": self.url, "apiKey": self.api_key, "webhookAuthorization": self.webhook_authorization}

    def webhook_headers(self, body: bytes, *, secret: str | None = None, sent_at: int | None = None) -> dict[str, str]:
        return {"Content-Type": "application/json", "Authorization": secret or self.webhook_authorization}

    def sample_webhook(self) -> bytes:
        return json.dumps(self.webhook_event("subscription_renewed", "user-42")).encode()

    def sample_event(self) -> dict[str, Any] | None:
        self.add_profile("user-42")
        data = {
            "customer_user_id": "user-42",
            "product_id": "premium.monthly",
            "price": 9.99,
            "currency": "USD",
            "country": "US",
            "subscription_id": "sub_42",
            "purchased_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-02-01T00:00:00Z",
        }
        return {"id": "evt_sample", "type": "subscription.created", "occurred_at": "2026-01-01T00:00:00Z", "data": data}

    # -- the vendor's contract --------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "Api-Key" or not secrets.compare_digest(key.strip().encode(), self.api_key.encode()):
            return _error(401, "unauthorized", {"non_field_errors": ["Invalid API key"]})
        return None

    def rate_limited(self, retry_after: int) -> Response:
        response = _error(429, "throttled", {"non_field_errors": ["Request was throttled."]})
        response.headers["Retry-After"] = str(retry_after)
        return response

    def route(self, request: Request) -> Response:
        path = request.path.removeprefix(PREFIX)
        if (request.method, path) == ("GET", "/profile/"):
            found = self.profile_of(request)
            return found if isinstance(found, Response) else Response(200, {"data": found})
        if request.method == "POST" and path in (
            "/purchase/set/transaction/",
            "/purchase/profile/revoke/access-level/",
        ):
            try:
                body = request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return _error(400, "invalid_json", {"non_field_errors": ["The body must be a JSON object"]})
            write = self._set_transaction if path.endswith("/set/transaction/") else self._revoke
            return write(request, body)
        return _error(404, "not_found", {"non_field_errors": ["Not found."]})

    def _record(self, request: Request, profile: Mapping[str, Any], body: dict[str, Any]) -> None:
        headers = {k: v for k, v in request.headers.items() if k.startswith("adapty-")}
        self.writes.append(
            {"path": request.path, "profile_id": profile["profile_id"], "headers": headers, "body": body}
        )

    def _set_transaction(self, request: Request, body: dict[str, Any]) -> Response:
        problems = _transaction_problems(body)
        if problems:
            return _error(400, "validation_error", problems)
        found = self.profile_of(request)
        if isinstance(found, Response):
            return found
        with self.lock:
            self._record(request, found, body)
            self.transactions[(found["profile_id"], body["store_transaction_id"])] = body
            level = self.access_levels.get(body["store_product_id"], "premium")
            found["access_levels"] = [a for a in found["access_levels"] if a["access_level_id"] != level] + [
                {
                    "access_level_id": level,
                    "store": body["store"],
                    "store_product_id": body["store_product_id"],
                    "store_transaction_id": body["store_transaction_id"],
                    "store_original_transaction_id": body["store_original_transaction_id"],
                    "purchased_at": body["purchased_at"],
                    "expires_at": body.get("expires_at"),
                }
            ]
            found["total_revenue_usd"] = sum(
                float(t["price"]["value"]) for (pid, _), t in self.transactions.items() if pid == found["profile_id"]
            )
            return Response(200, {"data": found})

    def _revoke(self, request: Request, body: dict[str, Any]) -> Response:
        problems: dict[str, list[str]] = {}
        if not isinstance(body.get("access_level_id"), str) or not body["access_level_id"]:
            problems["access_level_id"] = ["This field is required."]
        if body.get("revoke_at") is not None and not _is_time(body["revoke_at"]):
            problems["revoke_at"] = ["Datetime has wrong format."]
        if problems:
            return _error(400, "validation_error", problems)
        found = self.profile_of(request)
        if isinstance(found, Response):
            return found
        with self.lock:
            self._record(request, found, body)
            if body.get("revoke_at") is None:
                found["access_levels"] = [
                    a for a in found["access_levels"] if a["access_level_id"] != body["access_level_id"]
                ]
            else:
                for level in found["access_levels"]:
                    if level["access_level_id"] == body["access_level_id"]:
                        level["expires_at"] = body["revoke_at"]
            return Response(200, {"data": found})

    # -- webhooks ---------------------------------------------------------------------------------

    def webhook_event(self, event_type: str, customer_user_id: str | None, **properties: Any) -> dict[str, Any]:
        """A flat webhook body as documented; ``properties`` go into (and override) ``event_properties``."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
        pid = self.add_profile(customer_user_id) if customer_user_id is not None else str(uuid.uuid4())
        return {
            "profile_id": pid,
            "customer_user_id": customer_user_id,
            "idfv": None,
            "idfa": None,
            "advertising_id": None,
            "email": None,
            "user_agent": "Adapty/3.0",
            "profile_install_datetime": now,
            "event_type": event_type,
            "event_datetime": now,
            "event_api_version": 1,
            "event_properties": {
                "store": "app_store",
                "environment": "Production",
                "vendor_product_id": "premium.monthly",
                "transaction_id": "2000000" + str(int(time.time() * 1000))[-8:],
                "original_transaction_id": "2000000000000001",
                "purchase_date": now,
                "price_usd": 9.99,
                "proceeds_usd": 8.49,
                "net_revenue_usd": 8.49,
                "price_local": 9.99,
                "currency": "USD",
                "profile_event_id": str(uuid.uuid4()),
                **properties,
            },
            "profiles_sharing_access_level": None,
            "attributions": {},
            "user_attributes": {},
            "integration_ids": {},
        }

    def _post(self, url: str, body: Mapping[str, Any], authorization: Any) -> httpx.Response:
        value = self.webhook_authorization if authorization is _NO_HEADER else authorization
        headers = {"Content-Type": "application/json"}
        if value is not None:
            headers["Authorization"] = str(value)
        with httpx.Client(timeout=10.0) as client:  # Adapty waits 10 s, then retries
            return client.post(url, json=dict(body), headers=headers)

    def send_webhook(self, url: str, event: Mapping[str, Any], *, authorization: Any = _NO_HEADER) -> httpx.Response:
        """POST ``event`` to ``url`` as Adapty does: with :attr:`webhook_authorization`, unless
        ``authorization`` is given (``None`` sends no Authorization header)."""
        return self._post(url, event, authorization)

    def send_handshake(self, url: str, *, authorization: Any = _NO_HEADER) -> bool:
        """Adapty's check when a webhook is saved: True when ``url`` answers 200 or 201 with exactly
        ``{"adapty_check_response": <the string sent>}``. The answer is kept in :attr:`last_handshake`."""
        token = secrets.token_urlsafe(12)
        response = self.last_handshake = self._post(url, {"adapty_check": token}, authorization)
        try:
            answer = response.json()
        except ValueError:
            return False
        return response.status_code in (200, 201) and answer == {"adapty_check_response": token}


def _transaction_problems(body: Mapping[str, Any]) -> dict[str, list[str]]:
    """The set-transaction body checked against the documented fields: field name to its errors."""
    required = "This field is required."
    problems: dict[str, list[str]] = {}
    kind = body.get("purchase_type")
    if kind not in ("subscription", "one_time_purchase"):
        problems["purchase_type"] = ['Must be "subscription" or "one_time_purchase".']
    for name in ("store", "store_product_id", "store_transaction_id", "store_original_transaction_id"):
        if not isinstance(body.get(name), str) or not body[name]:
            problems[name] = [required]
    if isinstance(body.get("store_transaction_id"), str) and len(body["store_transaction_id"]) > 50:
        problems["store_transaction_id"] = ["Ensure this field has no more than 50 characters."]
    if body.get("environment") not in (None, "Production", "Sandbox"):
        problems["environment"] = ['Must be "Production" or "Sandbox".']
    price = body.get("price")
    if not isinstance(price, Mapping):
        problems["price"] = [required]
    else:
        for name in ("country", "currency"):
            if not isinstance(price.get(name), str) or not price[name]:
                problems[f"price.{name}"] = [required]
        value = price.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems["price.value"] = ["A valid number is required."]
    if body.get("purchased_at") is None:
        problems["purchased_at"] = [required]
    for name in ("purchased_at", "originally_purchased_at", "expires_at"):  # which are required beyond
        if body.get(name) is not None and not _is_time(body[name]):  # purchased_at is not documented
            problems[name] = ["Datetime has wrong format."]
    return problems
