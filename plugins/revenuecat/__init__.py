"""The RevenueCat connector: a stub whose methods arrive with the connectors issue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

__all__ = ["RevenueCatConnector", "register_connectors"]


class RevenueCatConnector(Connector):
    """RevenueCat: the methods its manifest declares, each a stub until the connectors issue."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """Stub until the connectors issue.

        It will GET /projects with apiKey.
        """
        raise NotImplementedError("revenuecat check arrives with the connectors issue")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Stub until the connectors issue.

        It will page the project's customers, then their subscriptions and purchases.
        """
        raise NotImplementedError("revenuecat sync arrives with the connectors issue")

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """Stub until the connectors issue.

        It will compare the Authorization header with webhookAuthorization and parse the event.
        """
        raise NotImplementedError("revenuecat handle_webhook arrives with the connectors issue")


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in RevenueCat connector with its manifest."""
    register(RevenueCatConnector, builtin_manifest_path("revenuecat"))
