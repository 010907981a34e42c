"""The Stripe connector: events in by signed webhook and by pulling the Events API; customers out.

Every request goes through ``ctx.http`` to ``settings.baseUrl`` (default ``https://api.stripe.com``),
with the ``apiKey`` as a bearer token and the optional ``Stripe-Account`` (``accountId``) and
``Stripe-Version`` (``apiVersion``) headers. The modules beside this one each do one job: ``_api``
(requests and the reading of Stripe's errors), ``_sync`` (the Events API cursor), ``_events`` (an
Event as an inbound envelope), ``_webhooks`` (``Stripe-Signature``), ``_customers`` (the upsert).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

from ._api import StripeApi
from ._customers import upsert_customer
from ._events import event_envelope
from ._sync import sync_events
from ._webhooks import parse_event, verify_signature

__all__ = ["StripeConnector", "register_connectors"]


class StripeConnector(Connector):
    """Stripe: ``check`` on the balance, ``sync`` of the Events API, signed webhooks, Customer upserts."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """``GET /v1/balance``: the cheapest call every secret or restricted key with balance read may make."""
        balance = StripeApi.from_context(ctx).get("/v1/balance")
        mode = "live" if balance.get("livemode") else "test"
        account = f", account {ctx.settings['accountId']}" if ctx.settings.get("accountId") else ""
        return CheckResult(ok=True, message=f"connected to Stripe ({mode} mode{account})")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Page ``GET /v1/events`` from the saved ``created`` cursor; a checkpoint after every page (``_sync``)."""
        return sync_events(StripeApi.from_context(ctx), ctx)

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Upsert the Stripe Customer of a platform customer, with ``Idempotency-Key`` (``_customers``)."""
        upsert_customer(StripeApi.from_context(ctx), ctx, event, idempotency_key)

    def verify_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult | None:
        """Check ``Stripe-Signature`` with ``webhookSecret`` against ``received_at``; refuse thin v2 events."""
        verify_signature(ctx.settings.get("webhookSecret"), request)
        parse_event(request.body)
        return None

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """The verified body is one Event: one envelope."""
        return WebhookResult(events=[event_envelope(parse_event(request.body))])


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in Stripe connector with its manifest."""
    register(StripeConnector, builtin_manifest_path("stripe"))
