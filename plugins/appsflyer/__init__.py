"""The AppsFlyer connector: a stub whose methods arrive with the connectors issue."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

__all__ = ["AppsFlyerConnector", "register_connectors"]


class AppsFlyerConnector(Connector):
    """AppsFlyer: the methods its manifest declares, each a stub until the connectors issue."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """Stub until the connectors issue.

        It will GET /api/mng/apps with the V2 token.
        """
        raise NotImplementedError("appsflyer check arrives with the connectors issue")

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Stub until the connectors issue.

        It will POST an S2S in-app event with devKey.
        """
        raise NotImplementedError("appsflyer deliver arrives with the connectors issue")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Stub until the connectors issue.

        It will pull the raw-data reports window by window.
        """
        raise NotImplementedError("appsflyer sync arrives with the connectors issue")

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """Stub until the connectors issue.

        It will compare the Push API token header and parse the message.
        """
        raise NotImplementedError("appsflyer handle_webhook arrives with the connectors issue")


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in AppsFlyer connector with its manifest."""
    register(AppsFlyerConnector, builtin_manifest_path("appsflyer"))
