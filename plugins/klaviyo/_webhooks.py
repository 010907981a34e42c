"""Klaviyo system webhooks: the ``Klaviyo-Signature`` check and the batch they carry.

Signature (vendors.md §8): hex HMAC-SHA256, keyed with the webhook secret, over the raw body followed by
the ``Klaviyo-Timestamp`` header value, with no separator. The timestamp is an IMF-fixdate
(``Tue, 14 Apr 2026 03:50:12 GMT``). Both facts come from implementations rather than Klaviyo's own page
(UNCONFIRMED), so the check is tolerant where that costs no safety: the digest may come hex or base64,
``sha256=``-prefixed, or several comma-separated (a secret being rotated); the timestamp may be unix
seconds. The replay window, undocumented, is five minutes either side of when Interlink received it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from interlink.connector import ConnectorContext, PermanentError, WebhookRequest, WebhookResult
from interlink.envelope import envelope

from ._sync import event_type, related_id

__all__ = ["TOLERANCE", "parse_batch", "signature", "verify"]

TOLERANCE = timedelta(minutes=5)


def signature(secret: str, body: bytes, timestamp: str) -> str:
    """The hex ``Klaviyo-Signature`` of ``body`` sent with ``timestamp``."""
    return hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def verify(ctx: ConnectorContext, request: WebhookRequest) -> None:
    """Return when the request is signed with ``settings.webhookSecret`` and fresh; raise PermanentError otherwise."""
    secret = ctx.settings.get("webhookSecret")
    if not isinstance(secret, str) or not secret:
        raise _refused("no webhook secret is set — set settings.webhookSecret to the secret of the Klaviyo webhook")
    timestamp, signatures = request.header("Klaviyo-Timestamp"), request.header("Klaviyo-Signature")
    if not timestamp or not signatures:
        raise _refused("the request has no Klaviyo-Signature or Klaviyo-Timestamp header")
    sent_at = _parse_timestamp(timestamp)
    if sent_at is None:
        raise _refused("the Klaviyo-Timestamp header is not a date")
    received = request.received_at if request.received_at.tzinfo else request.received_at.replace(tzinfo=UTC)
    if abs(received - sent_at) > TOLERANCE:
        raise _refused("the Klaviyo-Timestamp is more than 5 minutes away from when the request arrived (a replay?)")
    expected = hmac.new(secret.encode(), request.body + timestamp.encode(), hashlib.sha256).digest()
    if not any(hmac.compare_digest(expected, given) for given in _digests(signatures)):
        raise _refused("the Klaviyo-Signature does not match — check settings.webhookSecret")


def parse_batch(request: WebhookRequest) -> WebhookResult:
    """One envelope per item of ``{"data": [{topic, external_id, payload}], "meta": {...}}``."""
    try:
        body = json.loads(request.body)
    except ValueError:
        raise PermanentError("the Klaviyo webhook body is not JSON") from None
    items = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(items, list):
        raise PermanentError('the Klaviyo webhook body has no "data" list')
    meta = _object(body.get("meta"))
    return WebhookResult(events=[_item(item, meta) for item in items if isinstance(item, Mapping)])


def _item(item: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    payload = _object(item.get("payload"))
    # The payload has the shape of Get Event: the event resource, or a document whose "data" is one.
    resource = _object(payload.get("data")) or payload
    attributes = _object(resource.get("attributes"))
    event_id = resource.get("id") or item.get("external_id")
    if not event_id:
        digest = hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()[:32]
        event_id = f"klaviyo_webhook_{digest}"
    topic = item.get("topic")
    profile_id = related_id(resource, "profile")
    profile = _included_profile(payload, profile_id)
    properties = attributes.get("event_properties")
    return envelope(
        id=str(event_id),
        type=str(topic) if isinstance(topic, str) and topic else event_type(None),
        source="klaviyo",
        occurred_at=attributes.get("datetime") or attributes.get("timestamp") or meta.get("timestamp"),
        raw=item,
        subject={
            "id": profile_id,
            "email": profile.get("email"),
            "external_id": profile.get("external_id"),
            "phone_number": profile.get("phone_number"),
        },
        data={
            "topic": topic,
            "external_id": item.get("external_id"),
            "metric_id": related_id(resource, "metric"),
            "profile_id": profile_id,
            "properties": dict(properties) if isinstance(properties, Mapping) else {},
            "timestamp": attributes.get("timestamp"),
            "klaviyo_account_id": meta.get("klaviyo_account_id"),
        },
    )


def _included_profile(payload: Mapping[str, Any], profile_id: str | None) -> Mapping[str, Any]:
    included = payload.get("included")
    for item in included if isinstance(included, list) else []:
        if isinstance(item, Mapping) and item.get("type") == "profile" and str(item.get("id")) == profile_id:
            attributes = item.get("attributes")
            return attributes if isinstance(attributes, Mapping) else {}
    return {}


def _parse_timestamp(value: str) -> datetime | None:
    """An IMF-fixdate, or unix seconds (milliseconds when it is that large), as an aware datetime."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if number != number or number in (float("inf"), float("-inf")):
        return None
    if number > 1e11:
        number /= 1000.0
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _digests(header: str) -> list[bytes]:
    """Every digest the header may carry: hex or base64, optionally ``sha256=``/``v1=`` prefixed."""
    found: list[bytes] = []
    for part in re.split(r"[,\s]+", header):
        token = part
        for prefix in ("sha256=", "v1="):
            if token.lower().startswith(prefix):
                token = token[len(prefix) :]
                break
        if not token:
            continue
        try:
            found.append(bytes.fromhex(token))
            continue
        except ValueError:
            pass
        try:
            found.append(base64.b64decode(token, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def _object(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def _refused(message: str) -> PermanentError:
    return PermanentError(f"Klaviyo webhook refused: {message}", setting="webhookSecret")
