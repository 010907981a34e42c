"""The Klaviyo connector: a stub whose methods arrive with the connectors issue."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

__all__ = ["KlaviyoConnector", "register_connectors"]


class KlaviyoConnector(Connector):
    """Klaviyo: the methods its manifest declares, each a stub until the connectors issue."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """Stub until the connectors issue.

        It will GET /api/accounts with apiKey.
        """
        raise NotImplementedError("klaviyo check arrives with the connectors issue")

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Stub until the connectors issue.

        It will track a Klaviyo event with unique_id, or import the profile.
        """
        raise NotImplementedError("klaviyo deliver arrives with the connectors issue")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Stub until the connectors issue.

        It will page GET /api/events from the last seen datetime.
        """
        raise NotImplementedError("klaviyo sync arrives with the connectors issue")

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """Stub until the connectors issue.

        It will verify Klaviyo-Signature with webhookSecret and split the batch.
        """
        raise NotImplementedError("klaviyo handle_webhook arrives with the connectors issue")


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in Klaviyo connector with its manifest."""
    register(KlaviyoConnector, builtin_manifest_path("klaviyo"))
