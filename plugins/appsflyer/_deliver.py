"""A platform event as an AppsFlyer server-to-server in-app event (``POST /inappevent/{app_id}``).

=====================  =========================================================================
``appsflyer_id``       ``data.appsflyer_id`` (required: AppsFlyer attributes S2S events to a device;
                       an inbound AppsFlyer envelope gives its ``subject.id``)
``eventName``          by event type: ``order.created`` ``af_purchase``, ``subscription.created``
                       ``af_subscribe``, ``customer.created`` ``af_complete_registration``
``eventValue``         a JSON string: ``af_revenue`` (``data.amount`` in minor units of
                       ``data.currency``, else ``data.revenue``/``data.price`` in major units),
                       ``af_currency``, ``af_order_id``, ``af_content_id``, and ``interlink_event_id``
``eventTime``          the event's ``occurred_at``, as ``yyyy-mm-dd hh:mm:ss.sss`` UTC
``eventCurrency``      ``data.currency``
``customer_user_id``   ``data.customer_user_id`` (or ``user_id``, ``external_id``; an envelope's
                       ``subject.external_id``)
device fields          ``ip``, ``idfa``, ``idfv``, ``advertising_id``, ``oaid``, ``amazon_aid``,
                       ``bundleIdentifier`` from ``data`` when present
=====================  =========================================================================

Idempotency: AppsFlyer takes no idempotency key and does not deduplicate S2S events, so a retried
delivery whose first attempt reached AppsFlyer (say the answer was lost) may be recorded twice.
The event's idempotency key travels in ``eventValue`` as ``interlink_event_id``, so the duplicates can be
found in raw data and dropped downstream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from interlink.connector import PermanentError
from interlink.envelope import is_envelope
from interlink.money import to_major

__all__ = ["EVENT_NAMES", "MAX_BODY", "s2s_body"]

EVENT_NAMES = {
    "order.created": "af_purchase",
    "subscription.created": "af_subscribe",
    "customer.created": "af_complete_registration",
}
MAX_BODY = 1024
"""AppsFlyer refuses S2S bodies over 1 KB."""
_DEVICE_FIELDS = ("ip", "idfa", "idfv", "advertising_id", "oaid", "amazon_aid", "bundleIdentifier")


def _first(data: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = data.get(name)
        if value is not None and value != "" and not isinstance(value, dict | list):
            return value
    return None


def _payload(event: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """The event's data, and the subject and source when the data is an inbound envelope."""
    data = event.get("data")
    if isinstance(data, Mapping) and is_envelope(data):
        inner, subject = data.get("data"), data.get("subject")
        return (
            dict(inner if isinstance(inner, Mapping) else {}),
            dict(subject if isinstance(subject, Mapping) else {}),
            str(data.get("source")),
        )
    return dict(data if isinstance(data, Mapping) else {}), {}, None


def _time(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PermanentError(f"occurred_at is not an ISO 8601 time: {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _revenue(data: Mapping[str, Any]) -> tuple[Decimal | None, str | None]:
    currency = data.get("currency")
    code = currency.upper() if isinstance(currency, str) and len(currency) == 3 else None
    amount = data.get("amount")
    if isinstance(amount, int) and not isinstance(amount, bool) and code:
        return to_major(amount, code), code
    major = _first(data, "revenue", "price")
    if isinstance(major, int | float | str) and not isinstance(major, bool):
        try:
            return Decimal(str(major)), code
        except ArithmeticError:
            return None, code
    return None, code


def s2s_body(event: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
    """The JSON body of the S2S event for ``event``; PermanentError when AppsFlyer cannot take it."""
    event_type = str(event.get("type") or "")
    name = EVENT_NAMES.get(event_type)
    if name is None:
        raise PermanentError(
            f"AppsFlyer takes no event of type {event_type!r}; it takes {', '.join(sorted(EVENT_NAMES))}"
        )
    data, subject, source = _payload(event)
    device = _first(data, "appsflyer_id") or (subject.get("id") if source == "appsflyer" else None)
    if device is None:
        raise PermanentError(
            "the event names no device: AppsFlyer S2S events need data.appsflyer_id (the id AppsFlyer's SDK "
            "gives the app install)"
        )
    value: dict[str, Any] = {}
    revenue, currency = _revenue(data)
    if revenue is not None:
        value["af_revenue"] = str(revenue)
    if currency is not None:
        value["af_currency"] = currency
    for key, names in (("af_order_id", ("order_id", "id")), ("af_content_id", ("product_id", "sku"))):
        found = _first(data, *names)
        if found is not None:
            value[key] = str(found)
    value["interlink_event_id"] = idempotency_key
    body: dict[str, Any] = {
        "appsflyer_id": str(device),
        "eventName": name,
        "eventValue": json.dumps(value, separators=(",", ":")),
    }
    when = _time(event.get("occurred_at"))
    if when is not None:
        body["eventTime"] = when
    if currency is not None:
        body["eventCurrency"] = currency
    user = _first(data, "customer_user_id", "user_id", "external_id") or subject.get("external_id")
    if user is not None:
        body["customer_user_id"] = str(user)
    for key in _DEVICE_FIELDS:
        found = _first(data, key)
        if found is not None:
            body[key] = str(found)
    if len(json.dumps(body, separators=(",", ":")).encode()) > MAX_BODY:
        raise PermanentError(f"the S2S event would exceed AppsFlyer's {MAX_BODY}-byte limit; send fewer fields")
    return body
