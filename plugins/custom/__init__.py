"""The Custom integration: platform events POSTed as JSON to your endpoint, signed per Standard Webhooks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from interlink.connector import Connector, ConnectorContext, PermanentError, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.http import raise_for_status
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

__all__ = ["CustomConnector", "register_connectors"]


class CustomConnector(Connector):
    """POSTs each event to ``settings.url`` with ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``."""

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """POST ``{"id", "type", "timestamp", "data"}``; any 2xx is success.

        ``webhook-id`` is the event id on every attempt, so the receiver can drop duplicates; a receiver
        verifies the signature with the integration's signing secret (the ``standardwebhooks`` library).
        """
        if not ctx.signing_secret:
            raise PermanentError("the integration has no signing secret; rotate it to create one")
        body = json.dumps(
            {"id": event["id"], "type": event["type"], "timestamp": event["occurred_at"], "data": event["data"]},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": idempotency_key,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(ctx.signing_secret).sign(idempotency_key, now, body),
        }
        authorization = ctx.settings.get("authorizationHeader")
        if authorization:
            headers["authorization"] = str(authorization)
        response = ctx.http.post(str(ctx.settings["url"]), content=body.encode(), headers=headers)
        raise_for_status(
            response, setting="url" if response.is_redirect or not authorization else "authorizationHeader"
        )

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """Stub until the inbound webhooks issue: it will check the inbound API key and parse the events."""
        raise NotImplementedError("custom handle_webhook arrives with the inbound webhooks issue")


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in Custom integration connector with its manifest."""
    register(CustomConnector, builtin_manifest_path("custom"))
