"""The Google Play connector: a stub whose methods arrive with the connectors issue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

__all__ = ["GooglePlayConnector", "register_connectors"]


class GooglePlayConnector(Connector):
    """Google Play: the methods its manifest declares, each a stub until the connectors issue."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """Stub until the connectors issue.

        It will get an OAuth token and list one voided purchase.
        """
        raise NotImplementedError("google_play check arrives with the connectors issue")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Stub until the connectors issue.

        It will page voided purchases from the last seen time.
        """
        raise NotImplementedError("google_play sync arrives with the connectors issue")

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """Stub until the connectors issue.

        It will verify the Pub/Sub OIDC token and decode the developer notification.
        """
        raise NotImplementedError("google_play handle_webhook arrives with the connectors issue")


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in Google Play connector with its manifest."""
    register(GooglePlayConnector, builtin_manifest_path("google_play"))
