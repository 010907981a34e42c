"""RevenueCat webhooks: the Authorization check and the event parsed into an inbound envelope.

RevenueCat does not sign its webhooks. The only proof a request comes from it is the Authorization header
value typed in its dashboard, sent verbatim on every POST; the connector compares it with
``settings.webhookAuthorization`` in constant time. What that can and cannot do:

* no value configured: every request is refused, with a message saying to set one (an unauthenticated
  endpoint would accept anyone's events);
* a body changed in transit cannot be detected (nothing covers the body; TLS is the protection);
* there is no timestamp to check for staleness: a replayed request carries the same ``event.id``, which
  the core records once per integration, so a replay (or RevenueCat's own retry) creates nothing new.

The value is compared exactly; for convenience a configured value without a scheme also matches the
same value sent as ``Bearer <value>``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any

from interlink.connector import ConnectorContext, PermanentError, WebhookRequest
from interlink.envelope import envelope

from ._records import SOURCE, ms_time

__all__ = ["parse_event", "verify_authorization"]

SETTING = "webhookAuthorization"
_DATA_FIELDS = (
    "product_id",
    "new_product_id",
    "price",
    "currency",
    "price_in_purchased_currency",
    "takehome_percentage",
    "store",
    "environment",
    "period_type",
    "transaction_id",
    "original_transaction_id",
    "entitlement_ids",
    "presented_offering_id",
    "country_code",
    "cancel_reason",
    "expiration_reason",
    "is_family_share",
    "app_id",
    "transferred_from",
    "transferred_to",
)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def verify_authorization(ctx: ConnectorContext, request: WebhookRequest) -> None:
    """Accept the request if its Authorization header is the configured value; raise PermanentError if not."""
    expected = str(ctx.settings.get(SETTING) or "")
    if not expected:
        raise PermanentError(
            "RevenueCat webhooks are refused until settings.webhookAuthorization is set: choose a long random "
            "value, save it there and as the webhook's Authorization header value in the RevenueCat dashboard",
            setting=SETTING,
        )
    sent = request.header("Authorization")
    if sent is None:
        raise PermanentError(
            "the webhook request carried no Authorization header — set the webhook's Authorization header value "
            "in the RevenueCat dashboard to settings.webhookAuthorization",
            setting=SETTING,
        )
    sent = sent.strip()
    matches = _same(sent, expected) | (" " not in expected and _same(sent, f"Bearer {expected}"))
    if not matches:
        raise PermanentError(
            "the webhook's Authorization header does not match settings.webhookAuthorization — make the value in "
            "the RevenueCat dashboard and the setting the same",
            setting=SETTING,
        )


def _subject(event: Mapping[str, Any]) -> dict[str, Any]:
    user = event.get("app_user_id") or event.get("original_app_user_id")
    if not user and isinstance(event.get("transferred_to"), list) and event["transferred_to"]:
        user = event["transferred_to"][0]  # a TRANSFER names the users instead
    attributes = event.get("subscriber_attributes")
    email = attributes.get("$email") if isinstance(attributes, Mapping) else None
    if isinstance(email, Mapping):
        email = email.get("value")
    return {
        "id": user if isinstance(user, str) else None,
        "external_id": user if isinstance(user, str) else None,
        "email": email if isinstance(email, str) and email else None,
    }


def parse_event(request: WebhookRequest) -> dict[str, Any]:
    """The envelope of ``{"api_version": "1.0", "event": {...}}``; PermanentError for any other body."""
    try:
        body = json.loads(request.body)
    except ValueError:
        raise PermanentError("the RevenueCat webhook body is not JSON") from None
    event = body.get("event") if isinstance(body, dict) else None
    if not isinstance(event, dict):
        raise PermanentError('the RevenueCat webhook body has no "event" object')
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
        raise PermanentError("the RevenueCat webhook event lacks its id or type")
    data = {name: event[name] for name in _DATA_FIELDS if event.get(name) is not None}
    for name in ("purchased_at", "expiration_at", "grace_period_expiration_at", "auto_resume_at"):
        moment = ms_time(event.get(f"{name}_ms"))
        if moment is not None:
            data[name] = moment
    occurred = ms_time(event.get("event_timestamp_ms")) or request.received_at
    return envelope(
        id=event_id,
        type=event_type,
        source=SOURCE,
        occurred_at=occurred,
        subject=_subject(event),
        data=data,
        raw=body,
    )
