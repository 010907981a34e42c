"""The inbound envelope: one shape for what every source connector receives, whatever the vendor.

A Stripe ``invoice.paid``, a RevenueCat ``RENEWAL`` and an Adapty ``subscription_renewed`` all become::

    {
      "id": "evt_1Q...",                 # the vendor's own event id: a repeat of it is recorded once
      "type": "invoice.paid",            # the vendor's event type, as the manifest's sync_events name it
      "occurred_at": "2026-11-26T10:00:00Z",
      "source": "stripe",                # the service id of the connector that received it
      "subject": {"id": "cus_...", "email": "a@example.com", "external_id": "user-42"},
      "data": {"amount": 1999, "currency": "USD", ...},   # the fields a destination maps, vendor-neutral
      "raw": {...}                       # the vendor's object, untouched
    }

``data.amount`` is an integer in the currency's minor units (cents: 1999 is 19.99 USD, as Stripe counts), with
``data.currency`` its ISO 4217 code.

``subject`` says who the event is about: the vendor's customer id, and when known the e-mail address and
the platform's own user id (``external_id``: Stripe metadata, RevenueCat ``app_user_id``, Adapty
``customer_user_id``). A destination such as Klaviyo identifies the profile from it, so a RevenueCat
renewal can reach Klaviyo without either connector knowing the other.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["envelope", "is_envelope", "iso_time"]

_KEYS = frozenset({"id", "type", "occurred_at", "source", "subject", "data", "raw"})


def iso_time(value: datetime | int | float | str | None) -> str | None:
    """An ISO 8601 UTC string (``...Z``) from a datetime, a unix time in seconds, or a string kept as given."""
    if value is None or isinstance(value, str):
        return value
    if type(value) is int:  # whole seconds, the usual vendor timestamp: formatted without a datetime
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(float(value), UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def envelope(
    *,
    id: str,
    type: str,
    source: str,
    occurred_at: datetime | int | float | str | None,
    raw: Mapping[str, Any],
    subject: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build an inbound envelope; ``subject`` keys whose value is ``None`` are left out.

    ``raw`` and ``data`` dicts are referenced, not copied: the envelope is stored (serialised) as it is built.
    """
    return {
        "id": str(id),
        "type": type,
        "occurred_at": iso_time(occurred_at),
        "source": source,
        "subject": {k: v for k, v in subject.items() if v is not None} if subject else {},
        "data": data if isinstance(data, dict) else dict(data or {}),
        "raw": raw if isinstance(raw, dict) else dict(raw),
    }


def is_envelope(value: object) -> bool:
    """Whether ``value`` (an event's ``data``) is an inbound envelope rather than a platform's own payload."""
    return isinstance(value, Mapping) and set(value) >= _KEYS
