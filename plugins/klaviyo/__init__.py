"""The Klaviyo connector: events tracked and profiles upserted through Klaviyo's REST API, events pulled
from the Events API, and system webhooks verified and split into inbound envelopes.

The modules inside each have one job: ``_api`` (headers, base URL, what an answer means), ``_mapping``
(an event as Klaviyo's JSON:API documents), ``_batch`` (bulk delivery), ``_sync`` (the Events API
pull) and ``_webhooks`` (signature and batch parsing).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from interlink.connector import (
    CheckResult,
    Connector,
    ConnectorContext,
    PermanentError,
    WebhookRequest,
    WebhookResult,
)
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

from ._api import KlaviyoApi
from ._batch import deliver_many, track, upsert_profile
from ._mapping import PROFILE_EVENTS
from ._sync import sync_events
from ._webhooks import parse_batch, verify

__all__ = ["KlaviyoConnector", "register_connectors"]


class KlaviyoConnector(Connector):
    """Klaviyo, through its REST API at ``settings.baseUrl`` (https://a.klaviyo.com) and system webhooks."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """``GET /api/accounts``, the call Klaviyo provides to test a private key."""
        response = KlaviyoApi(ctx).get("/api/accounts")
        try:
            accounts = response.json().get("data") or []
            account = accounts[0] if isinstance(accounts, list) and accounts else {}
            name = account.get("attributes", {}).get("contact_information", {}).get("organization_name")
        except (ValueError, AttributeError):
            name = None
        return CheckResult(ok=True, message=f"connected to the Klaviyo account {name}" if name else "connected")

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Track the event (``unique_id`` = ``idempotency_key``), or upsert the profile of a ``customer.*`` event.

        An event that came from Klaviyo itself (an inbound ``klaviyo`` envelope) is not sent back.
        """
        api = KlaviyoApi(ctx)
        if str(event.get("type")) in PROFILE_EVENTS:
            upsert_profile(api, event)
        else:
            track(api, event, idempotency_key)

    def deliver_batch(
        self, ctx: ConnectorContext, batch: Sequence[tuple[Mapping[str, Any], str]]
    ) -> list[Exception | None]:
        """Tracked events through bulk-create jobs, profile upserts one by one; one outcome per event."""
        try:
            api = KlaviyoApi(ctx)
        except PermanentError as exc:
            return [exc] * len(batch)
        return deliver_many(api, batch)

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Klaviyo events newer than the checkpoint, oldest first, a checkpoint after each page."""
        return sync_events(KlaviyoApi(ctx), ctx.state)

    def verify_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult | None:
        """Check ``Klaviyo-Signature`` with ``settings.webhookSecret`` and the timestamp's age."""
        verify(ctx, request)
        return None

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """One inbound envelope per item of the webhook's ``data``, typed by its topic."""
        return parse_batch(request)


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in Klaviyo connector with its manifest."""
    register(KlaviyoConnector, builtin_manifest_path("klaviyo"))
