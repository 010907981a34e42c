"""Outbound ``customer.created`` / ``customer.updated``: a platform customer upserted as a Stripe Customer.

Which Stripe Customer (decided from the event alone, so every attempt of one delivery takes the same path):

* the payload names it (``stripe_customer_id``, or an ``id`` that is a ``cus_...``): ``POST /v1/customers/{id}``;
* ``customer.created``: ``POST /v1/customers``, the platform's id kept in ``metadata[external_id]``;
* ``customer.updated``: the Customer whose ``metadata['external_id']`` is the platform's id
  (``GET /v1/customers/search``), updated; created when there is none.

Every POST carries ``Idempotency-Key: <event id>``, so a retried attempt is answered with the first
attempt's result by Stripe rather than creating a second Customer. Search is eventually consistent (a
Customer created a moment ago may not be found yet); if a retry finds the Customer that its own first
attempt created, Stripe refuses the key on the update (``idempotency_error``) and the create is replayed
instead. An inbound Stripe event (an envelope whose ``source`` is ``stripe``) is not sent back to Stripe:
that would echo it in a loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from interlink.connector import ConnectorContext, PermanentError
from interlink.envelope import is_envelope

from ._api import StripeApi, StripeRequestError

__all__ = ["DELIVERED_TYPES", "upsert_customer"]

DELIVERED_TYPES = ("customer.created", "customer.updated")
EXTERNAL_ID = "external_id"
_TEXT_FIELDS = ("email", "name", "phone", "description")
_ADDRESS_FIELDS = {
    "line1": "line1",
    "line2": "line2",
    "city": "city",
    "state": "state",
    "postal_code": "postal_code",
    "zip": "postal_code",
    "country": "country",
}


def upsert_customer(api: StripeApi, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
    """Create or update the Stripe Customer of the platform customer in ``event`` (see the module docstring)."""
    kind = event.get("type")
    if kind not in DELIVERED_TYPES:
        raise PermanentError(f"the Stripe connector delivers {' and '.join(DELIVERED_TYPES)}, not {kind!r}")
    data = event.get("data")
    if isinstance(data, Mapping) and is_envelope(data) and data.get("source") == "stripe":
        ctx.logger.info("stripe deliver: %s came from Stripe; not sending it back", data.get("id"))
        return
    customer, external_id, stripe_id = _platform_customer(data)
    form = _customer_form(customer, external_id)
    if stripe_id:
        api.post(f"/v1/customers/{quote(stripe_id, safe='')}", form, idempotency_key)
        return
    if kind == "customer.updated" and external_id:
        found = _find(api, external_id)
        if found:
            try:
                api.post(f"/v1/customers/{quote(found, safe='')}", form, idempotency_key)
                return
            except StripeRequestError as exc:
                if exc.type != "idempotency_error":
                    raise  # else: this key created the Customer on an earlier attempt; replay that create
    api.post("/v1/customers", form, idempotency_key)


def _platform_customer(data: Any) -> tuple[dict[str, Any], str | None, str | None]:
    """The Customer fields of the platform's payload (or of another source's envelope), its id, the Stripe id."""
    if not isinstance(data, Mapping):
        raise PermanentError("a customer event needs a JSON object as data")
    if is_envelope(data):  # e.g. a RevenueCat event routed here: the subject says who
        subject = data.get("subject") or {}
        who = {"email": subject.get("email"), "external_id": subject.get("external_id")}
        data = {**(data.get("data") or {}), **{k: v for k, v in who.items() if v}}
    own_id = data.get("id")
    stripe_id = data.get("stripe_customer_id") or (own_id if str(own_id or "").startswith("cus_") else None)
    candidates = (data.get("external_id"), data.get("customer_id"), data.get("user_id"), own_id)
    external_id = next((str(v) for v in candidates if v not in (None, "") and v != stripe_id), None)
    customer: dict[str, Any] = {k: data[k] for k in _TEXT_FIELDS if k in data}
    if "name" not in customer and (data.get("first_name") or data.get("last_name")):
        customer["name"] = " ".join(str(data[k]) for k in ("first_name", "last_name") if data.get(k))
    if isinstance(data.get("address"), Mapping):
        customer["address"] = {_ADDRESS_FIELDS[k]: v for k, v in data["address"].items() if k in _ADDRESS_FIELDS}
    if isinstance(data.get("metadata"), Mapping):
        customer["metadata"] = dict(data["metadata"])
    return customer, external_id, str(stripe_id) if stripe_id else None


def _customer_form(customer: dict[str, Any], external_id: str | None) -> dict[str, Any]:
    """The Customer parameters: text fields as strings, metadata values as strings, the platform id kept."""
    form = {k: v if v is None or isinstance(v, Mapping) else str(v) for k, v in customer.items() if k != "metadata"}
    metadata = {str(k): None if v is None else str(v) for k, v in customer.get("metadata", {}).items()}
    if external_id:
        metadata[EXTERNAL_ID] = external_id
    if metadata:
        form["metadata"] = metadata
    return form


def _find(api: StripeApi, external_id: str) -> str | None:
    """The id of the newest Customer whose ``metadata['external_id']`` is ``external_id``."""
    escaped = external_id.replace("\\", "\\\\").replace("'", "\\'")
    found = api.get("/v1/customers/search", {"query": f"metadata['{EXTERNAL_ID}']:'{escaped}'"})
    data = found.get("data")
    if isinstance(data, list) and data and isinstance(data[0], Mapping) and isinstance(data[0].get("id"), str):
        return str(data[0]["id"])
    return None
