"""The Adapty connector: a stub whose methods arrive with the connectors issue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

__all__ = ["AdaptyConnector", "register_connectors"]


class AdaptyConnector(Connector):
    """Adapty: the methods its manifest declares, each a stub until the connectors issue."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """Stub until the connectors issue.

        It will GET the server-side API profile endpoint with apiKey.
        """
        raise NotImplementedError("adapty check arrives with the connectors issue")

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Stub until the connectors issue.

        It will record or revoke a purchase on the Adapty profile.
        """
        raise NotImplementedError("adapty deliver arrives with the connectors issue")

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """Stub until the connectors issue.

        It will compare the Authorization header with webhookAuthorization, answer adapty_check.
        """
        raise NotImplementedError("adapty handle_webhook arrives with the connectors issue")


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in Adapty connector with its manifest."""
    register(AdaptyConnector, builtin_manifest_path("adapty"))
