"""Inbound envelopes from RevenueCat's v2 objects (customer, subscription, purchase) read by the sync.

Record ids are stable, so the core's dedupe on them makes a re-read harmless:

* ``customer:<id>`` for a customer (its id is the app user id);
* ``<subscription id>:<current_period_starts_at>`` for a subscription: one record per billing period, so
  a later sync yields a renewal (a new period) and nothing for a period it has already read;
* ``<purchase id>`` for a one-time purchase.

An id longer than the core's 200 characters (app user ids may have 1,500) is replaced by a digest.
The subject is the customer: ``id`` and ``external_id`` are the app user id, ``email`` its ``$email``
attribute when the object carries attributes (the list endpoint does not; no extra call is made).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from interlink.envelope import envelope

__all__ = ["customer_record", "email_of", "ms_time", "purchase_record", "record_id", "subscription_record"]

SOURCE = "revenuecat"
_MAX_ID = 200


def record_id(*parts: object) -> str:
    """``parts`` joined by ``:``; a digest of them when that is longer than the core accepts."""
    joined = ":".join(str(p) for p in parts)
    if len(joined) <= _MAX_ID:
        return joined
    return f"{str(parts[0])[:20]}:sha256:{hashlib.sha256(joined.encode()).hexdigest()}"


def ms_time(value: object) -> str | None:
    """An ISO 8601 UTC string from milliseconds since the epoch (RevenueCat's times), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value / 1000.0, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def email_of(customer: Mapping[str, Any]) -> str | None:
    """The ``$email`` attribute of a customer object whose ``attributes`` list came with it."""
    attributes = customer.get("attributes")
    items = attributes.get("items") if isinstance(attributes, Mapping) else None
    for item in items if isinstance(items, list) else ():
        if isinstance(item, Mapping) and item.get("name") == "$email" and isinstance(item.get("value"), str):
            return str(item["value"]) or None
    return None


def _subject(customer: Mapping[str, Any]) -> dict[str, Any]:
    cid = customer.get("id")
    return {"id": cid, "external_id": cid, "email": email_of(customer)}


def _usd(amount: object) -> Any:
    """The gross of a MonetaryAmount (``{currency, gross, ...}``), or a plain number as given."""
    return amount.get("gross") if isinstance(amount, Mapping) else amount


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def customer_record(customer: Mapping[str, Any]) -> dict[str, Any]:
    """The customer itself: who they are and when they were first and last seen."""
    return envelope(
        id=record_id("customer", customer["id"]),
        type="customer",
        source=SOURCE,
        occurred_at=ms_time(customer.get("first_seen_at")),
        subject=_subject(customer),
        data=_clean(
            {
                "first_seen_at": ms_time(customer.get("first_seen_at")),
                "last_seen_at": ms_time(customer.get("last_seen_at")),
                "last_seen_country": customer.get("last_seen_country"),
                "last_seen_platform": customer.get("last_seen_platform"),
            }
        ),
        raw=customer,
    )


def subscription_record(subscription: Mapping[str, Any], customer: Mapping[str, Any]) -> dict[str, Any]:
    """A subscription in its current billing period."""
    revenue = subscription.get("total_revenue_in_usd")
    return envelope(
        id=record_id(subscription["id"], subscription.get("current_period_starts_at")),
        type="subscription",
        source=SOURCE,
        occurred_at=ms_time(subscription.get("current_period_starts_at")),
        subject=_subject(customer),
        data=_clean(
            {
                "subscription_id": subscription["id"],
                "product_id": subscription.get("product_id"),
                "status": subscription.get("status"),
                "gives_access": subscription.get("gives_access"),
                "auto_renewal_status": subscription.get("auto_renewal_status"),
                "store": subscription.get("store"),
                "environment": subscription.get("environment"),
                "store_subscription_identifier": subscription.get("store_subscription_identifier"),
                "starts_at": ms_time(subscription.get("starts_at")),
                "current_period_starts_at": ms_time(subscription.get("current_period_starts_at")),
                "expiration_at": ms_time(subscription.get("current_period_ends_at")),
                "revenue_usd": _usd(revenue),
                "currency": "USD" if revenue is not None else None,
                "country": subscription.get("country"),
            }
        ),
        raw=subscription,
    )


def purchase_record(purchase: Mapping[str, Any], customer: Mapping[str, Any]) -> dict[str, Any]:
    """A one-time (non-subscription) purchase."""
    revenue = purchase.get("revenue_in_usd")
    return envelope(
        id=record_id(purchase["id"]),
        type="purchase",
        source=SOURCE,
        occurred_at=ms_time(purchase.get("purchased_at")),
        subject=_subject(customer),
        data=_clean(
            {
                "purchase_id": purchase["id"],
                "product_id": purchase.get("product_id"),
                "status": purchase.get("status"),
                "quantity": purchase.get("quantity"),
                "store": purchase.get("store"),
                "environment": purchase.get("environment"),
                "store_purchase_identifier": purchase.get("store_purchase_identifier"),
                "purchased_at": ms_time(purchase.get("purchased_at")),
                "revenue_usd": _usd(revenue),
                "currency": "USD" if revenue is not None else None,
                "country": purchase.get("country"),
            }
        ),
        raw=purchase,
    )
