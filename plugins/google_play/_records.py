"""Inbound envelopes from Google Play: a voided purchase (the sync) and a developer notification (RTDN).

* a voided purchase: id ``voided:<orderId>:<voidedTimeMillis>`` (``purchaseToken`` digest when there is no
  order id), type ``VOIDED_PURCHASE``, at ``voidedTimeMillis``; the list carries no price, so no ``amount``;
* a notification: id the Pub/Sub ``messageId`` (Google's retries of one message keep it), type from the kind
  of notification: ``SUBSCRIPTION_<NAME>`` for a subscription notification's code (1 RECOVERED ... 20
  PENDING_PURCHASE_CANCELED; an unknown code gives ``SUBSCRIPTION_NOTIFICATION_<code>``),
  ``ONE_TIME_PRODUCT_PURCHASED``/``_CANCELED``, ``VOIDED_PURCHASE``, ``TEST_NOTIFICATION``.
  RTDN only says something changed: ``data`` holds what the notification carries, not the purchase's state.

The subject is the purchase: ``id`` its ``purchaseToken``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from interlink.connector import PermanentError
from interlink.envelope import envelope

__all__ = ["SOURCE", "SUBSCRIPTION_TYPES", "notification_envelope", "voided_envelope"]

SOURCE = "google_play"
SUBSCRIPTION_TYPES = {
    1: "SUBSCRIPTION_RECOVERED",
    2: "SUBSCRIPTION_RENEWED",
    3: "SUBSCRIPTION_CANCELED",
    4: "SUBSCRIPTION_PURCHASED",
    5: "SUBSCRIPTION_ON_HOLD",
    6: "SUBSCRIPTION_IN_GRACE_PERIOD",
    7: "SUBSCRIPTION_RESTARTED",
    8: "SUBSCRIPTION_PRICE_CHANGE_CONFIRMED",
    9: "SUBSCRIPTION_DEFERRED",
    10: "SUBSCRIPTION_PAUSED",
    11: "SUBSCRIPTION_PAUSE_SCHEDULE_CHANGED",
    12: "SUBSCRIPTION_REVOKED",
    13: "SUBSCRIPTION_EXPIRED",
    19: "SUBSCRIPTION_PRICE_CHANGE_UPDATED",
    20: "SUBSCRIPTION_PENDING_PURCHASE_CANCELED",
}
ONE_TIME_TYPES = {1: "ONE_TIME_PRODUCT_PURCHASED", 2: "ONE_TIME_PRODUCT_CANCELED"}
VOIDED_SOURCES = {0: "user", 1: "developer", 2: "google"}
VOIDED_REASONS = {
    0: "other",
    1: "remorse",
    2: "not_received",
    3: "defective",
    4: "accidental_purchase",
    5: "fraud",
    6: "friendly_fraud",
    7: "chargeback",
    8: "unacknowledged_purchase",
}
_MAX_ID = 200


def _ms(value: object) -> int | None:
    """Google's millisecond times come as strings ("1503349566168") or numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return int(value) if isinstance(value, int | float) else None


def ms_time(value: object) -> str | None:
    """ISO 8601 UTC from milliseconds since the epoch, else ``None``."""
    ms = _ms(value)
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000.0, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def _code(value: object) -> int | None:
    return _ms(value)


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def voided_id(item: Mapping[str, Any]) -> str | None:
    """The stable id of a voided purchase: its order and when it was voided (a purchase may be voided in parts)."""
    order, token = item.get("orderId"), item.get("purchaseToken")
    voided = _ms(item.get("voidedTimeMillis"))
    if isinstance(order, str) and order:
        found = f"voided:{order}:{voided}"
    elif isinstance(token, str) and token:
        found = f"voided:sha256:{hashlib.sha256(token.encode()).hexdigest()}:{voided}"
    else:
        return None
    return found if len(found) <= _MAX_ID else f"voided:sha256:{hashlib.sha256(found.encode()).hexdigest()}"


def voided_envelope(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """The envelope of a voided purchase, ``None`` when it has neither order id nor purchase token."""
    record_id = voided_id(item)
    if record_id is None:
        return None
    source, reason = _code(item.get("voidedSource")), _code(item.get("voidedReason"))
    return envelope(
        id=record_id,
        type="VOIDED_PURCHASE",
        source=SOURCE,
        occurred_at=ms_time(item.get("voidedTimeMillis")),
        subject={"id": item.get("purchaseToken")},
        data=_clean(
            {
                "order_id": item.get("orderId"),
                "purchase_token": item.get("purchaseToken"),
                "purchased_at": ms_time(item.get("purchaseTimeMillis")),
                "voided_at": ms_time(item.get("voidedTimeMillis")),
                "voided_source": VOIDED_SOURCES.get(source, source) if source is not None else None,
                "voided_reason": VOIDED_REASONS.get(reason, reason) if reason is not None else None,
                "voided_quantity": item.get("voidedQuantity"),
            }
        ),
        raw=item,
    )


def _kind(notification: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The envelope type of a DeveloperNotification, and the part that carries it."""
    sub = notification.get("subscriptionNotification")
    if isinstance(sub, Mapping):
        code = _code(sub.get("notificationType"))
        return SUBSCRIPTION_TYPES.get(code or -1, f"SUBSCRIPTION_NOTIFICATION_{code}"), sub
    one = notification.get("oneTimeProductNotification")
    if isinstance(one, Mapping):
        code = _code(one.get("notificationType"))
        return ONE_TIME_TYPES.get(code or -1, f"ONE_TIME_PRODUCT_NOTIFICATION_{code}"), one
    voided = notification.get("voidedPurchaseNotification")
    if isinstance(voided, Mapping):
        return "VOIDED_PURCHASE", voided
    test = notification.get("testNotification")
    if isinstance(test, Mapping):
        return "TEST_NOTIFICATION", test
    raise PermanentError("the developer notification carries no notification this connector knows")


def notification_envelope(message_id: str, notification: Mapping[str, Any], published: str | None) -> dict[str, Any]:
    """The envelope of a decoded DeveloperNotification delivered as Pub/Sub message ``message_id``."""
    kind, part = _kind(notification)
    return envelope(
        id=message_id,
        type=kind,
        source=SOURCE,
        occurred_at=ms_time(notification.get("eventTimeMillis")) or published,
        subject={"id": part.get("purchaseToken")},
        data=_clean(
            {
                "package_name": notification.get("packageName"),
                "purchase_token": part.get("purchaseToken"),
                "notification_type": _code(part.get("notificationType")),
                "subscription_id": part.get("subscriptionId"),
                "product_id": part.get("sku"),
                "order_id": part.get("orderId"),
                "product_type": part.get("productType"),
                "refund_type": part.get("refundType"),
            }
        ),
        raw=notification,
    )
