"""Stripe webhook verification, as stripe-python's ``WebhookSignature.verify_header`` does it.

``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]``: each ``v1`` is the hex HMAC-SHA256 of
``"{t}.{raw body}"`` keyed with the whole ``whsec_...`` secret; any one may match (Stripe sends two while
a secret is being rolled). A timestamp more than :data:`TOLERANCE_SECONDS` before the request was
received is refused (a replay); later ones are not, as Stripe's own library does not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from interlink.connector import PermanentError, WebhookRequest

__all__ = ["TOLERANCE_SECONDS", "parse_event", "verify_signature"]

TOLERANCE_SECONDS = 300
SETTING = "webhookSecret"


def verify_signature(secret: str | None, request: WebhookRequest) -> None:
    """Return when ``request`` is signed with ``secret`` recently enough; else a :class:`PermanentError`."""
    if not secret:
        raise PermanentError(
            "No webhook signing secret is set — copy the endpoint's signing secret (whsec_...) from the "
            "Stripe Dashboard into settings.webhookSecret",
            setting=SETTING,
        )
    header = request.header("Stripe-Signature")
    if not header:
        raise PermanentError(
            "The request has no Stripe-Signature header: it did not come from Stripe, or a proxy dropped the header",
            setting=SETTING,
        )
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.strip().isdigit():
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value.strip())
    if timestamp is None or not signatures:
        raise PermanentError(
            "The Stripe-Signature header has no timestamp or no v1 signature — check settings.webhookSecret",
            setting=SETTING,
        )
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected.encode(), s.encode("utf-8", "replace")) for s in signatures):
        raise PermanentError(
            "Webhook signature verification failed — check settings.webhookSecret (the endpoint's whsec_... "
            "signing secret in the Stripe Dashboard)",
            setting=SETTING,
        )
    age = int(request.received_at.timestamp()) - timestamp
    if age > TOLERANCE_SECONDS:
        raise PermanentError(
            f"The webhook was signed {age} s before it arrived (more than {TOLERANCE_SECONDS} s): a replayed "
            "or delayed request is refused",
            setting=SETTING,
        )


def parse_event(body: bytes) -> dict[str, Any]:
    """The snapshot Event a verified body carries; thin v2 notifications and other bodies are refused."""
    try:
        event = json.loads(body)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        raise PermanentError("The webhook body is not a JSON Stripe Event")
    if event.get("object") == "v2.core.event":
        raise PermanentError(
            "Thin event notifications (v2.core.event) are not supported: set the Stripe event destination's "
            "payload style to snapshot"
        )
    if event.get("object") != "event":
        raise PermanentError(f"The webhook body is not a Stripe Event (object {event.get('object')!r})")
    return event
