"""The Stripe connector: a stub whose methods arrive with the connectors issue."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

__all__ = ["StripeConnector", "register_connectors"]


class StripeConnector(Connector):
    """Stripe: the methods its manifest declares, each a stub until the connectors issue."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """Stub until the connectors issue.

        It will GET /v1/balance with apiKey.
        """
        raise NotImplementedError("stripe check arrives with the connectors issue")

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Stub until the connectors issue.

        It will upsert the Stripe Customer of a platform customer, with Idempotency-Key.
        """
        raise NotImplementedError("stripe deliver arrives with the connectors issue")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Stub until the connectors issue.

        It will page GET /v1/events from the last seen event.
        """
        raise NotImplementedError("stripe sync arrives with the connectors issue")

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """Stub until the connectors issue.

        It will verify Stripe-Signature with webhookSecret and parse the Event.
        """
        raise NotImplementedError("stripe handle_webhook arrives with the connectors issue")


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in Stripe connector with its manifest."""
    register(StripeConnector, builtin_manifest_path("stripe"))
