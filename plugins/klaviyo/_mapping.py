"""From an Interlink event to Klaviyo's JSON:API documents: tracked events, profiles, bulk jobs.

Two kinds of ``data`` arrive. A platform's own payload (``order.created`` with ``{"email": ...}``) is
tracked as is: metric = the event type, properties = the data. An inbound envelope
(:func:`interlink.envelope.is_envelope`: a Stripe ``invoice.paid`` or a RevenueCat ``RENEWAL`` routed here)
is unwrapped: the profile comes from its ``subject``, the metric from its ``type``, the properties from its
``data`` plus where it came from, and ``value``/``value_currency`` from its ``amount``/``currency``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from interlink.connector import PermanentError
from interlink.envelope import is_envelope
from interlink.money import to_major

__all__ = [
    "MAX_PROPERTIES",
    "PROFILE_EVENTS",
    "Track",
    "bulk_job",
    "echoes_klaviyo",
    "event_document",
    "profile_document",
    "track_from",
]

PROFILE_EVENTS = frozenset({"customer.created", "customer.updated"})
"""Event types upserted as a profile (``POST /api/profile-import``) rather than tracked as an event."""
MAX_PROPERTIES = 400
"""Klaviyo refuses an event with more properties than this."""
MAX_METRIC_NAME = 127

_IDENTIFIERS = ("email", "phone_number", "external_id")
_PROFILE_ATTRIBUTES = ("first_name", "last_name", "organization", "locale", "title", "image")
_LOCATION = ("address1", "address2", "city", "country", "region", "zip", "timezone", "ip", "latitude", "longitude")
_KLAVIYO_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
"""Klaviyo profile ids are ULIDs (``01GDDKASAP8TKDDA2GRZDSVP4H``): a platform's own ``id`` never looks like one."""


@dataclass
class Track:
    """One event to track: who it is about (``profile``, the profile resource) and the event's attributes."""

    profile: dict[str, Any]
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def profile_key(self) -> str:
        """Events of the same profile share this key: the bulk endpoint groups events by profile."""
        return json.dumps(self.profile, sort_keys=True, separators=(",", ":"))


def echoes_klaviyo(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` carries what Klaviyo itself sent us (an inbound ``klaviyo`` envelope).

    Such an event is not sent back: Klaviyo already has it, and tracking it again would loop.
    """
    data = event.get("data")
    return is_envelope(data) and isinstance(data, Mapping) and data.get("source") == "klaviyo"


def track_from(event: Mapping[str, Any], unique_id: str) -> Track:
    """The Klaviyo event for ``event`` (platform payload or inbound envelope); PermanentError when unmappable."""
    data = event.get("data")
    if not isinstance(data, Mapping):
        raise PermanentError("the event's data is not a JSON object, so it cannot be tracked in Klaviyo")
    metric = str(event.get("type") or "")
    occurred = event.get("occurred_at")
    if is_envelope(data):
        subject = data["subject"] if isinstance(data["subject"], Mapping) else {}
        inner = data["data"] if isinstance(data["data"], Mapping) else {}
        metric = str(data["type"] or metric)
        occurred = data["occurred_at"] or occurred
        profile = _profile_resource({**_flat_identity(inner), **_flat_identity(subject)}, allow_plain_id=False)
        properties: dict[str, Any] = {**inner, "source_service": data["source"], "source_event_id": data["id"]}
        if subject.get("id") is not None:
            properties.setdefault("source_customer_id", subject["id"])
        value = _value(inner, amounts=True)
    else:
        profile = _profile_resource(_flat_identity(data), allow_plain_id=True)
        properties = dict(data)
        value = _value(data, amounts=False)
    if not metric:
        raise PermanentError("the event has no type, which Klaviyo needs as the metric name")
    if len(properties) > MAX_PROPERTIES:
        raise PermanentError(
            f"the event has {len(properties)} top-level properties; Klaviyo accepts at most {MAX_PROPERTIES}"
        )
    attributes: dict[str, Any] = {
        "properties": properties,
        "metric": {"data": {"type": "metric", "attributes": {"name": metric[:MAX_METRIC_NAME]}}},
        "unique_id": unique_id,
    }
    if isinstance(occurred, str) and occurred:
        attributes["time"] = occurred
    if value is not None:
        attributes["value"], currency = value
        if currency:
            attributes["value_currency"] = currency
    return Track(profile, attributes)


def event_document(track: Track) -> dict[str, Any]:
    """The body of ``POST /api/events`` (Create Event)."""
    return {
        "data": {
            "type": "event",
            "attributes": {**track.attributes, "profile": {"data": track.profile}},
        }
    }


def bulk_job(groups: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> dict[str, Any]:
    """The body of ``POST /api/event-bulk-create-jobs``: ``(profile, [event attributes])`` groups."""
    return {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {
                "events-bulk-create": {
                    "data": [
                        {
                            "type": "event-bulk-create",
                            "attributes": {
                                "profile": {"data": profile},
                                "events": {"data": [{"type": "event", "attributes": e} for e in events]},
                            },
                        }
                        for profile, events in groups
                    ]
                }
            },
        }
    }


def profile_document(event: Mapping[str, Any]) -> dict[str, Any]:
    """The body of ``POST /api/profile-import`` for a ``customer.*`` event (platform payload or envelope).

    Known profile fields become attributes; every other field of the data becomes a custom property.
    The platform's customer ``id`` is the profile's ``external_id`` unless the data names one.
    """
    data = event.get("data")
    if not isinstance(data, Mapping):
        raise PermanentError("the event's data is not a JSON object, so it cannot be imported as a profile")
    if is_envelope(data):
        subject = data["subject"] if isinstance(data["subject"], Mapping) else {}
        fields = {**(data["data"] if isinstance(data["data"], Mapping) else {})}
        identity = {**_flat_identity(fields), **_flat_identity(subject)}
        allow_plain_id = False
    else:
        fields = dict(data)
        identity = _flat_identity(fields)
        allow_plain_id = True
        plain_id = fields.get("id")
        if "external_id" not in identity and isinstance(plain_id, str | int) and not _is_klaviyo_id(plain_id):
            identity["external_id"] = str(plain_id)
    resource = _profile_resource(identity, allow_plain_id=allow_plain_id)
    attributes = resource["attributes"]
    properties: dict[str, Any] = {}
    taken = set(_IDENTIFIERS) | {"id", "phone", "profile_id", "klaviyo_id", "customer", "profile"}
    location: dict[str, Any] = {}
    for key, value in fields.items():
        if key in _PROFILE_ATTRIBUTES and isinstance(value, str):
            attributes[key] = value
        elif key == "location" and isinstance(value, Mapping):
            location.update({k: v for k, v in value.items() if k in _LOCATION})
        elif key not in taken:
            properties[key] = value
    if location:
        attributes["location"] = location
    if properties:
        attributes["properties"] = properties
    return {"data": resource}


def _flat_identity(data: Mapping[str, Any]) -> dict[str, str]:
    """Profile identifiers found in ``data``: top-level, or in a nested ``customer``/``profile`` object."""
    found: dict[str, str] = {}
    for nested in ("customer", "profile"):
        inner = data.get(nested)
        if isinstance(inner, Mapping):  # a nested profile's id is Klaviyo's; a customer's is the platform's
            found.update(_identity_fields(inner, nested_id=nested == "profile"))
    found.update(_identity_fields(data, nested_id=False))
    return found


def _identity_fields(data: Mapping[str, Any], *, nested_id: bool) -> dict[str, str]:
    found: dict[str, str] = {}
    for key in _IDENTIFIERS:
        value = data.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            found[key] = str(value).strip()
    phone = data.get("phone")
    if "phone_number" not in found and isinstance(phone, str) and phone.strip():
        found["phone_number"] = phone.strip()
    for key in ("profile_id", "klaviyo_id"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            found["id"] = value.strip()
    plain = data.get("id")
    if isinstance(plain, str) and plain.strip() and (nested_id or _is_klaviyo_id(plain)):
        found.setdefault("plain_id", plain.strip())
    return found


def _profile_resource(identity: Mapping[str, str], *, allow_plain_id: bool) -> dict[str, Any]:
    """A profile resource (``{"type": "profile", "id"?, "attributes": {...}}``) naming at least one identifier.

    The Klaviyo profile id goes beside the attributes, as Klaviyo's schema has it. A plain ``id`` in the data
    counts only when it has the form of a Klaviyo profile id: a platform's order id is not a profile.
    """
    attributes = {k: identity[k] for k in _IDENTIFIERS if identity.get(k)}
    resource: dict[str, Any] = {"type": "profile"}
    profile_id = identity.get("id") or (identity.get("plain_id") if allow_plain_id else None)
    if profile_id:
        resource["id"] = profile_id
    if not attributes and "id" not in resource:
        raise PermanentError(
            "the event names no Klaviyo profile: give its data an email, phone_number or external_id "
            "(or a Klaviyo profile id)"
        )
    resource["attributes"] = attributes
    return resource


def _is_klaviyo_id(value: object) -> bool:
    return isinstance(value, str) and bool(_KLAVIYO_ID.match(value))


def _value(data: Mapping[str, Any], *, amounts: bool) -> tuple[float, str | None] | None:
    """``(value, currency)`` for Klaviyo from ``value`` (as is), or from an envelope's amount or price.

    Envelopes carry ``amount`` the way Stripe does, in the currency's minor unit when it is an integer
    (``1999`` USD is 19.99); a decimal ``amount`` (``19.99``) is taken as it is. Without one, a price in
    major units: ``price_in_purchased_currency`` with ``currency`` (RevenueCat), else ``price`` alone
    (RevenueCat's is in USD whatever ``currency`` says, so no currency is claimed for it and Klaviyo
    uses the account's). A platform payload's ``amount`` has no agreed unit: only its ``value`` is used.
    """
    currency = data.get("currency") or data.get("value_currency")
    currency = currency.upper() if isinstance(currency, str) and len(currency) == 3 else None
    value = data.get("value")
    if _number(value):
        return float(value), currency
    if not amounts:
        return None
    amount = data.get("amount")
    if isinstance(amount, int) and not isinstance(amount, bool) and currency:
        return float(to_major(amount, currency)), currency
    if _number(amount):
        return float(amount), currency
    if _number(data.get("price_in_purchased_currency")) and currency:
        return float(data["price_in_purchased_currency"]), currency
    if _number(data.get("price")):
        return float(data["price"]), None
    return None


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
