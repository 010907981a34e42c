"""Adapty webhooks: the Authorization check, the ``adapty_check`` handshake, the flat event as an envelope.

Adapty does not sign its webhooks: it sends the "Authorization header value" typed in its dashboard,
exactly as typed, and the connector compares it with ``settings.webhookAuthorization`` exactly, in
constant time. Consequences, decided here:

* no value configured: every request (the handshake too) is refused, saying to set one;
* the handshake (``{"adapty_check": "<s>"}``, sent when the webhook is saved in the dashboard) must carry
  the value as well: it is checked *after* the Authorization value, so a wrong value shows up at once,
  when the user saves, rather than with the first real event. It is answered 200
  ``{"adapty_check_response": "<s>"}`` and nothing is stored;
* the dashboard has one value for production and one for sandbox: set both to the same value;
* a changed body cannot be detected and there is no timestamp to find a stale request; a replay carries
  the same ``event_properties.profile_event_id``, which the core records once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from interlink.connector import ConnectorContext, PermanentError, WebhookRequest, WebhookResult
from interlink.envelope import envelope

__all__ = ["handshake", "parse_event", "verify_authorization"]

SETTING = "webhookAuthorization"
SOURCE = "adapty"
_PROPERTIES = (
    "vendor_product_id",
    "store",
    "environment",
    "price_usd",
    "proceeds_usd",
    "net_revenue_usd",
    "price_local",
    "proceeds_local",
    "net_revenue_local",
    "currency",
    "tax_amount_usd",
    "transaction_id",
    "original_transaction_id",
    "purchase_date",
    "original_purchase_date",
    "subscription_expires_at",
    "cancellation_reason",
    "trial_duration",
    "consecutive_payments",
    "rate_after_first_year",
    "access_level_id",
    "store_country",
    "profile_country",
    "profile_has_access_level",
    "is_sandbox",
    "promotional_offer_id",
    "variation_id",
    "paywall_name",
    "base_plan_id",
)


def verify_authorization(ctx: ConnectorContext, request: WebhookRequest) -> None:
    """Accept the request if its Authorization header is exactly the configured value."""
    expected = str(ctx.settings.get(SETTING) or "")
    if not expected:
        raise PermanentError(
            "Adapty webhooks are refused until settings.webhookAuthorization is set: choose a long random value, "
            "save it there and as the Authorization header value (production and sandbox) of the Adapty webhook",
            setting=SETTING,
        )
    sent = request.header("Authorization")
    if sent is None:
        raise PermanentError(
            "the webhook request carried no Authorization header — set the Authorization header value of the "
            "Adapty webhook integration to settings.webhookAuthorization",
            setting=SETTING,
        )
    if not hmac.compare_digest(sent.encode("utf-8"), expected.encode("utf-8")):
        raise PermanentError(
            "the webhook's Authorization header does not match settings.webhookAuthorization — make the value in "
            "Adapty's webhook settings (production and sandbox) and the setting the same",
            setting=SETTING,
        )


def _body(request: WebhookRequest) -> Any:
    try:
        return json.loads(request.body)
    except ValueError:
        return None


def handshake(request: WebhookRequest) -> WebhookResult | None:
    """Adapty's verification request answered as it expects, or ``None`` for an ordinary request."""
    body = _body(request)
    if isinstance(body, dict) and isinstance(body.get("adapty_check"), str):
        return WebhookResult(response_status=200, response_body={"adapty_check_response": body["adapty_check"]})
    return None


def _time(value: Any) -> Any:
    """ISO 8601 in UTC (``...Z``) from Adapty's ``2023-02-16T11:25:18.000000+0000``; as given if unreadable."""
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        return value
    return moment.isoformat().replace("+00:00", "Z")


def _fallback_id(body: Mapping[str, Any]) -> str:
    """A stable id for an event without ``profile_event_id``: the same body (a retry) gives the same id."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "adapty_" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def parse_event(request: WebhookRequest) -> list[dict[str, Any]]:
    """The envelope of one flat Adapty event (none for a handshake); PermanentError for another body."""
    body = _body(request)
    if not isinstance(body, dict):
        raise PermanentError("the Adapty webhook body is not a JSON object")
    if "adapty_check" in body:
        return []
    event_type = body.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise PermanentError("the Adapty webhook event has no event_type")
    properties = body.get("event_properties")
    properties = properties if isinstance(properties, dict) else {}
    event_id = properties.get("profile_event_id")
    data = {name: _time(properties[name]) for name in _PROPERTIES if properties.get(name) is not None}
    if "vendor_product_id" in data:
        data["product_id"] = data["vendor_product_id"]
    if "subscription_expires_at" in data:
        data["expiration_at"] = data["subscription_expires_at"]
    return [
        envelope(
            id=str(event_id) if event_id else _fallback_id(body),
            type=event_type,
            source=SOURCE,
            occurred_at=_time(body.get("event_datetime")) or request.received_at,
            subject={
                "id": body.get("profile_id"),
                "external_id": body.get("customer_user_id"),
                "email": body.get("email") or None,
            },
            data=data,
            raw=body,
        )
    ]
