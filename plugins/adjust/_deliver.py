"""A platform event as an Adjust S2S event (``POST /event``, form-encoded).

=====================  =========================================================================
``app_token``          ``settings.appToken``
``event_token``        the token ``settings.eventTokens`` maps the event type to (``order.created=abc123``)
``s2s``                ``1``
device id              the first of ``data.idfa``, ``gps_adid``, ``adid``, ``fire_adid``, ``oaid``,
                       ``idfv``, ``web_uuid`` (``advertising_id`` is sent as ``gps_adid``,
                       ``amazon_aid`` as ``fire_adid``); Adjust needs one
``created_at_unix``    the event's ``occurred_at``
``revenue`` +          ``data.amount`` in minor units of ``data.currency`` (else ``data.revenue`` or
``currency``           ``data.price`` in major units)
``environment``        ``settings.environment`` (``production`` unless ``sandbox``)
``ip_address``         ``data.ip_address`` or ``data.ip``
``callback_params``    ``{"interlink_event_id": <idempotency key>}``, as JSON
=====================  =========================================================================

Idempotency: Adjust's S2S API takes no idempotency key, so a retry whose first attempt reached Adjust
(say the answer was lost) may record the event twice. The key travels in ``callback_params``, which
Adjust passes on to the app's server callbacks and exports, so duplicates can be found and dropped
downstream. An answer saying an earlier unique event was tracked means the event is already recorded:
that counts as delivered.
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

__all__ = ["DEVICE_FIELDS", "event_form", "event_tokens"]

DEVICE_FIELDS = (
    ("idfa", "idfa"),
    ("gps_adid", "gps_adid"),
    ("advertising_id", "gps_adid"),
    ("adid", "adid"),
    ("fire_adid", "fire_adid"),
    ("amazon_aid", "fire_adid"),
    ("oaid", "oaid"),
    ("idfv", "idfv"),
    ("web_uuid", "web_uuid"),
)
"""Where a device id may be in the event's data, and the S2S parameter it is sent as; the first found wins."""


def event_tokens(settings: Mapping[str, Any]) -> dict[str, str]:
    """``settings.eventTokens`` (``["order.created=abc123", ...]``) as a mapping of event type to token."""
    found: dict[str, str] = {}
    items = settings.get("eventTokens")
    for item in items if isinstance(items, list) else ():
        event_type, sep, token = str(item).rpartition("=")
        if sep and event_type and token:
            found[event_type.strip()] = token.strip()
    return found


def _payload(event: Mapping[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    if isinstance(data, Mapping) and is_envelope(data):
        inner = data.get("data")
        return dict(inner if isinstance(inner, Mapping) else {})
    return dict(data if isinstance(data, Mapping) else {})


def _scalar(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "" or isinstance(value, dict | list | bool):
        return None
    return str(value)


def _unix(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PermanentError(f"occurred_at is not an ISO 8601 time: {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(int(moment.timestamp()))


def _revenue(data: Mapping[str, Any]) -> tuple[Decimal, str] | None:
    currency = data.get("currency")
    code = currency.upper() if isinstance(currency, str) and len(currency) == 3 else None
    if code is None:
        return None
    amount = data.get("amount")
    if isinstance(amount, int) and not isinstance(amount, bool):
        return to_major(amount, code), code
    for name in ("revenue", "price"):
        value = data.get(name)
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                return Decimal(str(value)), code
            except ArithmeticError:
                continue
    return None


def event_form(event: Mapping[str, Any], settings: Mapping[str, Any], app: str, idempotency_key: str) -> dict[str, str]:
    """The form fields of the S2S event for ``event``; PermanentError when Adjust cannot take it."""
    event_type = str(event.get("type") or "")
    token = event_tokens(settings).get(event_type)
    if token is None:
        raise PermanentError(
            f"no Adjust event token for {event_type!r} — add '{event_type}=<event token>' to settings.eventTokens "
            "(the token is in the Adjust dashboard, under the app's events)",
            setting="eventTokens",
        )
    data = _payload(event)
    form = {"s2s": "1", "app_token": app, "event_token": token}
    device = next(((param, v) for name, param in DEVICE_FIELDS if (v := _scalar(data, name)) is not None), None)
    if device is None:
        raise PermanentError(
            "the event names no device: Adjust S2S events need one of data.idfa, data.gps_adid, data.adid, "
            "data.fire_adid, data.oaid, data.idfv or data.web_uuid"
        )
    form[device[0]] = device[1]
    created = _unix(event.get("occurred_at"))
    if created is not None:
        form["created_at_unix"] = created
    revenue = _revenue(data)
    if revenue is not None:
        form["revenue"], form["currency"] = str(revenue[0]), revenue[1]
    form["environment"] = "sandbox" if settings.get("environment") == "sandbox" else "production"
    ip = _scalar(data, "ip_address") or _scalar(data, "ip")
    if ip is not None:
        form["ip_address"] = ip
    form["callback_params"] = json.dumps({"interlink_event_id": idempotency_key}, separators=(",", ":"))
    return form
