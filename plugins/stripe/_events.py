"""A Stripe Event as Interlink's inbound envelope: who it is about and the few fields destinations map."""

from __future__ import annotations

from typing import Any

from interlink.connector import PermanentError
from interlink.envelope import envelope

__all__ = ["event_envelope"]

SOURCE = "stripe"
EXTERNAL_ID_KEYS = ("external_id", "user_id", "app_user_id")
"""Metadata keys read as the platform's own user id, in this order (the Stripe connector writes ``external_id``)."""
_AMOUNT_KEYS = ("amount", "amount_total", "amount_paid", "amount_due")


def event_envelope(event: Any) -> dict[str, Any]:
    """The envelope of one Event (``id`` and ``type`` are Stripe's; ``raw`` is the Event untouched).

    Events come from JSON, so the checks are for ``dict`` (an ABC check costs several times more, and a
    sync makes a few dozen per event).
    """
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise PermanentError("Stripe sent something that is not an Event (no id or type)")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    obj = obj if isinstance(obj, dict) else {}
    created = event.get("created")
    return envelope(
        id=event["id"],
        type=event["type"],
        source=SOURCE,
        occurred_at=created if isinstance(created, int | float) else None,
        raw=event,
        subject=_subject(obj),
        data=_data(obj, event),
    )


def _subject(obj: dict[str, Any]) -> dict[str, Any]:
    """The customer id, e-mail and platform id from the object, wherever this kind of object keeps them."""
    customer = obj.get("customer")
    expanded = customer if isinstance(customer, dict) else None
    if obj.get("object") == "customer":
        customer_id, expanded = obj.get("id"), obj
    else:
        customer_id = expanded.get("id") if expanded else customer
    email = None
    for value in (
        expanded.get("email") if expanded else None,
        obj.get("customer_email"),
        _get(obj, "customer_details", "email"),
        _get(obj, "billing_details", "email"),
        obj.get("receipt_email"),
    ):
        if value and isinstance(value, str):
            email = value
            break
    return {
        "id": customer_id if isinstance(customer_id, str) else None,
        "email": email,
        "external_id": _external_id(obj) or (_external_id(expanded) if expanded else None),
    }


def _external_id(obj: dict[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    if metadata and isinstance(metadata, dict):
        for key in EXTERNAL_ID_KEYS:
            value = metadata.get(key)
            if value and isinstance(value, str):
                return value
    reference = obj.get("client_reference_id")  # Checkout's field for the platform's id
    return reference if reference and isinstance(reference, str) else None


def _data(obj: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """Vendor-neutral fields: the object's kind and id, amount (minor units), currency (ISO, upper), status."""
    amount = None
    for key in _AMOUNT_KEYS:
        value = obj.get(key)
        if isinstance(value, int):  # as before this loop replaced next(): the same values taken
            amount = value
            break
    currency = obj.get("currency")
    fields = {
        "object": obj.get("object"),
        "object_id": obj.get("id"),
        "amount": amount,
        "currency": currency.upper() if isinstance(currency, str) else None,
        "status": obj.get("status"),
        "livemode": event.get("livemode"),
    }
    return {k: v for k, v in fields.items() if v is not None}


def _get(obj: dict[str, Any], outer: str, inner: str) -> Any:
    nested = obj.get(outer)
    return nested.get(inner) if isinstance(nested, dict) else None
