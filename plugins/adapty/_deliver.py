"""From a platform event to the Adapty server-side write it means.

* ``subscription.created`` / ``subscription.updated``: ``POST /purchase/set/transaction/`` — a purchase made
  outside the app stores, recorded on the profile (``purchase_type`` ``subscription``, or
  ``one_time_purchase`` when the data says so);
* ``subscription.cancelled``: ``POST /purchase/profile/revoke/access-level/`` — the access level
  (``data.access_level_id``, else ``settings.accessLevelId``) ends at ``data.revoke_at``/``expires_at``,
  or at once.

The event's ``data`` is the platform's payload, or an inbound envelope from another source (its
``subject`` and ``data`` are read). Fields read, by their names in ``data``:

============================  ==============================================================
profile                       ``customer_user_id`` (or ``user_id``, ``external_id``, ``app_user_id``; the
                              envelope's ``subject.external_id``) → ``adapty-customer-user-id``; else
                              ``adapty_profile_id``/``profile_id`` → ``adapty-profile-id``
``store_product_id``          ``product_id`` (or ``store_product_id``, ``vendor_product_id``, ``plan_id``)
``price``                     ``price`` (major units, e.g. 9.99) with ``currency`` and ``country``
``store_transaction_id``      ``transaction_id``; **else the event's idempotency key**
``store_original_transaction_id``  ``original_transaction_id`` (or ``subscription_id``), else the above
``purchased_at``              ``purchased_at``, else the event's ``occurred_at``
``expires_at``                ``expires_at`` (or ``current_period_end``, ``expiration_at``) — subscriptions
``renew_status``              ``renew_status``, else not ``cancel_at_period_end``
``store`` / ``environment``   ``store`` (else ``settings.store``) / ``environment`` (``Production``)
============================  ==============================================================

Idempotency: Adapty takes no idempotency key, but it keys transactions on ``store_transaction_id`` — a
repeat of one updates that transaction instead of adding another. The connector sends the platform's
transaction id when there is one, else the event's idempotency key (the same on every attempt), so a
retried delivery can never record a purchase twice. A revoke is idempotent by nature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from interlink.connector import PermanentError
from interlink.envelope import is_envelope

__all__ = ["REVOKE", "SET_TRANSACTION", "Write", "write_for"]

SET_TRANSACTION = "/purchase/set/transaction/"
REVOKE = "/purchase/profile/revoke/access-level/"
_SETS = frozenset({"subscription.created", "subscription.updated"})
_REVOKES = frozenset({"subscription.cancelled"})


@dataclass(frozen=True)
class Write:
    """One server-side call: the path under the API prefix, the profile header and the JSON body."""

    path: str
    profile: dict[str, str]
    body: dict[str, Any]


def _first(data: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = data.get(name)
        if value is not None and value != "":
            return value
    return None


def adapty_time(value: Any, field: str) -> str:
    """Adapty's datetime format (``2022-10-12T09:42:50.000000+0000``) from ISO 8601 or unix s/ms."""
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value / 1000 if value > 100_000_000_000 else value, UTC)
        else:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (TypeError, ValueError, OverflowError, OSError):
        raise PermanentError(f"data.{field} is not a time (ISO 8601 or unix seconds): {str(value)[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def _payload(event: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The event's data, and the subject when the data is an inbound envelope."""
    data = event.get("data")
    if isinstance(data, Mapping) and is_envelope(data):
        inner, subject = data.get("data"), data.get("subject")
        return dict(inner if isinstance(inner, Mapping) else {}), dict(subject if isinstance(subject, Mapping) else {})
    return dict(data if isinstance(data, Mapping) else {}), {}


def _header_value(value: Any, field: str) -> str:
    text = str(value)
    if not text.isascii() or not text.isprintable() or len(text) > 1000:
        raise PermanentError(f"data.{field} cannot be sent in a header (printable ASCII, at most 1000 characters)")
    return text


def _profile(data: Mapping[str, Any], subject: Mapping[str, Any]) -> dict[str, str]:
    user = _first(data, "customer_user_id", "user_id", "external_id", "app_user_id") or subject.get("external_id")
    if user is not None:
        return {"adapty-customer-user-id": _header_value(user, "customer_user_id")}
    profile = _first(data, "adapty_profile_id", "profile_id")
    if profile is not None:
        return {"adapty-profile-id": _header_value(profile, "profile_id")}
    raise PermanentError(
        "the event names no user: Adapty needs data.customer_user_id (the id your app gives Adapty's SDK) "
        "or data.profile_id to find the profile"
    )


def _environment(data: Mapping[str, Any]) -> str:
    value = str(data.get("environment") or "").lower()
    sandbox = value in ("sandbox", "test", "testing") or data.get("livemode") is False
    return "Sandbox" if sandbox else "Production"


def _transaction(
    event: Mapping[str, Any], data: Mapping[str, Any], settings: Mapping[str, Any], key: str
) -> dict[str, Any]:
    product = _first(data, "product_id", "store_product_id", "vendor_product_id", "plan_id")
    price, currency, country = data.get("price"), _first(data, "currency"), _first(data, "country", "country_code")
    missing = [
        name for name, value in (("product_id", product), ("currency", currency), ("country", country)) if value is None
    ]
    if isinstance(price, bool) or not isinstance(price, int | float):
        missing.append("price (a number, in major units)")
    one_time = str(data.get("purchase_type") or "").lower() in ("one_time_purchase", "one_time", "non_subscription")
    expires = None if one_time else _first(data, "expires_at", "current_period_end", "expiration_at")
    if not one_time and expires is None:
        missing.append("expires_at")
    if missing:
        raise PermanentError(f"the event lacks what Adapty's set transaction needs: data.{', data.'.join(missing)}")
    transaction = str(_first(data, "transaction_id", "store_transaction_id") or key)
    purchased = adapty_time(_first(data, "purchased_at") or event.get("occurred_at"), "purchased_at")
    body: dict[str, Any] = {
        "purchase_type": "one_time_purchase" if one_time else "subscription",
        "store": str(_first(data, "store") or settings.get("store") or "web"),
        "environment": _environment(data),
        "store_product_id": str(product),
        "store_transaction_id": transaction,
        "store_original_transaction_id": str(
            _first(data, "original_transaction_id", "store_original_transaction_id", "subscription_id") or transaction
        ),
        "price": {"country": str(country).upper(), "currency": str(currency).upper(), "value": price},
        "purchased_at": purchased,
    }
    if not one_time:
        renew = data.get("renew_status")
        body["originally_purchased_at"] = adapty_time(
            _first(data, "originally_purchased_at") or purchased, "originally_purchased_at"
        )
        body["expires_at"] = adapty_time(expires, "expires_at")
        body["renew_status"] = renew if isinstance(renew, bool) else not data.get("cancel_at_period_end", False)
    return body


def write_for(event: Mapping[str, Any], settings: Mapping[str, Any], idempotency_key: str) -> Write:
    """The Adapty call that delivers ``event``; PermanentError when the event cannot be one."""
    event_type = str(event.get("type") or "")
    data, subject = _payload(event)
    if event_type in _SETS:
        return Write(SET_TRANSACTION, _profile(data, subject), _transaction(event, data, settings, idempotency_key))
    if event_type in _REVOKES:
        body: dict[str, Any] = {
            "access_level_id": str(_first(data, "access_level_id") or settings.get("accessLevelId") or "premium")
        }
        until = _first(data, "revoke_at", "expires_at", "current_period_end")
        if until is not None:
            body["revoke_at"] = adapty_time(until, "revoke_at")
        return Write(REVOKE, _profile(data, subject), body)
    raise PermanentError(
        f"Adapty does not take {event_type!r} events: it takes subscription.created, subscription.updated "
        "and subscription.cancelled"
    )
