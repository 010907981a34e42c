"""The Custom integration connector: a stub whose methods arrive with the connectors issue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlink.connector import Connector, ConnectorContext, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

__all__ = ["CustomConnector", "register_connectors"]


class CustomConnector(Connector):
    """Custom integration: the methods its manifest declares, each a stub until the connectors issue."""

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Stub until the connectors issue.

        It will POST the event as JSON to url, signed per Standard Webhooks with the integration's signing secret.
        """
        raise NotImplementedError("custom deliver arrives with the connectors issue")

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """Stub until the connectors issue.

        It will check the inbound API key and parse the posted events.
        """
        raise NotImplementedError("custom handle_webhook arrives with the connectors issue")


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in Custom integration connector with its manifest."""
    register(CustomConnector, builtin_manifest_path("custom"))
