"""The App Store Connect connector: a stub whose methods arrive with the connectors issue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

__all__ = ["AppStoreConnectConnector", "register_connectors"]


class AppStoreConnectConnector(Connector):
    """App Store Connect: the methods its manifest declares, each a stub until the connectors issue."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """Stub until the connectors issue.

        It will GET /v1/apps?limit=1 with an ES256 token.
        """
        raise NotImplementedError("app_store_connect check arrives with the connectors issue")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Stub until the connectors issue.

        It will page the notification history and the daily sales reports.
        """
        raise NotImplementedError("app_store_connect sync arrives with the connectors issue")

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """Stub until the connectors issue.

        It will verify the signedPayload JWS chain and parse the notification.
        """
        raise NotImplementedError("app_store_connect handle_webhook arrives with the connectors issue")


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in App Store Connect connector with its manifest."""
    register(AppStoreConnectConnector, builtin_manifest_path("app_store_connect"))
