"""The Custom integration: platform events POSTed as JSON to your endpoint, signed per Standard Webhooks; and
events your system POSTs to the integration's inbound URL, authenticated by its inbound API key."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import msgspec
from standardwebhooks.webhooks import Webhook

from interlink.connector import Connector, ConnectorContext, PermanentError, WebhookRequest, WebhookResult
from interlink.envelope import envelope
from interlink.errors import InvalidInputError
from interlink.hookspecs import hookimpl
from interlink.http import raise_for_status
from interlink.manifest import builtin_manifest_path
from interlink.pipeline import parse_events
from interlink.registry import Register

__all__ = ["CustomConnector", "register_connectors"]


_encoder = msgspec.json.Encoder()
"""Compact UTF-8 JSON as ``json.dumps(separators=(",", ":"), ensure_ascii=False)`` writes it, ten times faster."""


@lru_cache(maxsize=256)
def _signer(secret: str) -> Webhook:
    """The integration's signer, kept: building one decodes the secret."""
    return Webhook(secret)


class CustomConnector(Connector):
    """POSTs each event to ``settings.url`` with ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``."""

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """POST ``{"id", "type", "timestamp", "data"}``; any 2xx is success.

        ``webhook-id`` is the event id on every attempt, so the receiver can drop duplicates; a receiver
        verifies the signature with the integration's signing secret (the ``standardwebhooks`` library).
        """
        if not ctx.signing_secret:
            raise PermanentError("the integration has no signing secret; rotate it to create one")
        body = _encoder.encode(
            {"id": event["id"], "type": event["type"], "timestamp": event["occurred_at"], "data": event["data"]}
        )
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": idempotency_key,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": _signer(ctx.signing_secret).sign(idempotency_key, now, body),
        }
        authorization = ctx.settings.get("authorizationHeader")
        if authorization:
            headers["authorization"] = str(authorization)
        response = ctx.http.post(str(ctx.settings["url"]), content=body, headers=headers)
        raise_for_status(
            response, setting="url" if response.is_redirect or not authorization else "authorizationHeader"
        )

    def verify_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult | None:
        """Accept ``Authorization: Bearer ik_...`` when it is the integration's inbound key (SHA-256, constant time)."""
        if not ctx.inbound_key_hash:
            raise PermanentError(
                "the integration has no inbound API key yet: create one with "
                f"POST /v1/integrations/{ctx.integration_id}/regenerate-key"
            )
        header = request.header("Authorization") or ""
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PermanentError("no inbound API key: send it as 'Authorization: Bearer ik_...'")
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        if not hmac.compare_digest(digest, ctx.inbound_key_hash):
            raise PermanentError(
                "the Bearer token is not the integration's inbound API key (a regenerated key replaces the old "
                f"one at once): send the key from POST /v1/integrations/{ctx.integration_id}/regenerate-key"
            )
        return None

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """Read one event ``{"type", "data", "id"?, "occurred_at"?}`` or ``{"events": [...]}``, as ``POST /v1/events``.

        ``id`` is your own id for the event: a second request with the same ``id`` creates nothing new. An
        event without one gets an id derived from the body and its place in it, so a resent body is
        recognised too (send ids to tell identical events apart).
        """
        try:
            body = json.loads(request.body)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError
            raise PermanentError(f"the body is not JSON: {exc}") from None
        try:
            items = parse_events(body)
        except InvalidInputError as exc:
            raise PermanentError(f"the body is not an event or a batch of events: {exc}") from None
        raws = body.get("events", [body])
        derived = hashlib.sha256(request.body).hexdigest()[:32]
        events = [
            envelope(
                id=item.id or f"body-{derived}-{i}",
                type=item.type,
                source="custom",
                occurred_at=item.occurred_at or request.received_at,
                data=item.data if isinstance(item.data, Mapping) else {"value": item.data},
                raw=raw,
            )
            for i, (item, raw) in enumerate(zip(items, raws, strict=True))
        ]
        return WebhookResult(events=events)


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in Custom integration connector with its manifest."""
    register(CustomConnector, builtin_manifest_path("custom"))
