"""A decoded App Store Server Notification V2 as one inbound envelope, from a webhook or the history.

* ``id``: ``notificationUUID`` (Apple's id for deduplication: a retry, or the same notification read
  again from the history, is recorded once);
* ``type``: ``notificationType`` (``SUBSCRIBED``, ``DID_RENEW``, ...), the manifest's inbound types;
* ``occurred_at``: ``signedDate``;
* ``subject``: ``id`` the ``originalTransactionId`` (what stays the same across a subscription's renewals),
  ``external_id`` the ``appAccountToken`` the app set at purchase (the platform's own user id, a UUID);
* ``data``: ``subtype`` and the transaction's fields, ``amount`` in the currency's minor units (Apple's
  ``price`` is in thousandths of the unit);
* ``raw``: the decoded payload, ``data.signedTransactionInfo``/``signedRenewalInfo`` replaced by their decoded
  payloads as ``transactionInfo``/``renewalInfo``. Their signatures are covered by the outer one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from interlink.connector import PermanentError
from interlink.envelope import envelope

from ._jws import InvalidSignedData, decode_unverified

__all__ = ["SOURCE", "minor_units", "ms_time", "notification_envelope"]

SOURCE = "app_store_connect"
_ZERO_DECIMAL = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW MGA PYG RWF UGX UYI VND VUV XAF XOF XPF".split())  # noqa: SIM905
_THREE_DECIMAL = frozenset("BHD IQD JOD KWD LYD OMR TND".split())  # noqa: SIM905
_TRANSACTION_FIELDS = {
    "transactionId": "transaction_id",
    "originalTransactionId": "original_transaction_id",
    "productId": "product_id",
    "type": "product_type",
    "storefront": "storefront",
    "transactionReason": "transaction_reason",
    "offerType": "offer_type",
    "revocationReason": "revocation_reason",
    "quantity": "quantity",
    "currency": "currency",
}
_TIMES = {"purchaseDate": "purchased_at", "expiresDate": "expires_at", "revocationDate": "revoked_at"}


def ms_time(value: object) -> str | None:
    """ISO 8601 UTC from milliseconds since the epoch (Apple's times), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value / 1000.0, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def minor_units(price_milli: object, currency: object) -> int | None:
    """Apple's ``price`` (thousandths of the unit: 9990 is 9.99) in the currency's minor units (999)."""
    if isinstance(price_milli, bool) or not isinstance(price_milli, int | float) or not isinstance(currency, str):
        return None
    per_unit = 1 if currency in _ZERO_DECIMAL else 1000 if currency in _THREE_DECIMAL else 100
    return round(float(price_milli) * per_unit / 1000)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _nested(data: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        return None
    try:
        return decode_unverified(value)
    except InvalidSignedData:
        return None


def notification_envelope(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope of a decoded notification payload; PermanentError without its UUID or type."""
    uuid, kind = payload.get("notificationUUID"), payload.get("notificationType")
    if not isinstance(uuid, str) or not uuid or not isinstance(kind, str) or not kind:
        raise PermanentError("the App Store notification lacks its notificationUUID or notificationType")
    data = _mapping(payload.get("data"))
    transaction = _nested(data, "signedTransactionInfo") or {}
    renewal = _nested(data, "signedRenewalInfo")
    fields: dict[str, Any] = {
        "subtype": payload.get("subtype"),
        "environment": data.get("environment") or _mapping(payload.get("summary")).get("environment"),
        "bundle_id": data.get("bundleId"),
        "app_apple_id": data.get("appAppleId"),
        "status": data.get("status"),
    }
    fields.update({name: transaction.get(key) for key, name in _TRANSACTION_FIELDS.items()})
    fields.update({name: ms_time(transaction.get(key)) for key, name in _TIMES.items()})
    fields["amount"] = minor_units(transaction.get("price"), transaction.get("currency"))
    if renewal is not None:
        fields["auto_renew_status"] = renewal.get("autoRenewStatus")
        fields["auto_renew_product_id"] = renewal.get("autoRenewProductId")
    raw_data = {k: v for k, v in data.items() if k not in ("signedTransactionInfo", "signedRenewalInfo")}
    if transaction:
        raw_data["transactionInfo"] = transaction
    if renewal is not None:
        raw_data["renewalInfo"] = renewal
    raw = {**payload, "data": raw_data} if "data" in payload else dict(payload)
    return envelope(
        id=uuid,
        type=kind,
        source=SOURCE,
        occurred_at=ms_time(payload.get("signedDate")),
        subject={"id": transaction.get("originalTransactionId"), "external_id": transaction.get("appAccountToken")},
        data={k: v for k, v in fields.items() if v is not None},
        raw=raw,
    )
