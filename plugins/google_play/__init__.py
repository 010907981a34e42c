"""The Google Play connector: voided purchases pulled with a service account, and RTDN pushed by Pub/Sub.

* ``check``: a token from the service account (``_auth``), then ``voidedpurchases.list?maxResults=1``: it proves
  the key, the app and the "View financial data" permission the sync needs. There is no whoami endpoint.
* ``sync``: voided purchases (refunds, chargebacks, revocations), in-app and subscriptions (``type=1``). A run
  reads one window ``[startTime, endTime]`` (``endTime`` is when the run started) page by page (``token``),
  checkpointing ``{startTime, endTime, token}`` after each page and ``{startTime}`` at the end: the next window
  starts :data:`OVERLAP` before this one's end, as Google may record a void late (repeats carry the same id;
  the core records one). The first window, and any older saved one, starts 30 days back: Google keeps no more.
  A refused page token (400) starts the window again.
* ``verify_webhook`` / ``handle_webhook``: see ``_webhook`` (OIDC token of the push subscription's account) and
  ``_records`` (one envelope per push, id ``messageId``).

The Android Publisher API takes no idempotency key, and this connector only reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext, PermanentError, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

from ._api import GooglePlayApi
from ._records import notification_envelope, voided_envelope
from ._webhook import decode_push, verify_push

__all__ = ["GooglePlayConnector", "register_connectors"]

PAGE_SIZE = 100
RETENTION = timedelta(days=30)
"""How far back Google lists voids: a saved window older than this cannot be read any more."""
FIRST_WINDOW = RETENTION - timedelta(hours=1)
"""Where the first window starts (an hour inside the limit, so a resumed run may still read it)."""
OVERLAP = timedelta(minutes=10)


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class GooglePlayConnector(Connector):
    """Android Publisher API v3 (voided purchases) and real-time developer notifications."""

    max_results = PAGE_SIZE
    """Voided purchases per page: 100 keeps a page's memory small; voids are few, so the extra requests are cheap."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """Get a token and list one voided purchase of the last day."""
        now = int(ctx.now().timestamp() * 1000)
        api = GooglePlayApi(ctx)
        api.voided_purchases(start_ms=now - 86_400_000, end_ms=now, token=None, max_results=1)
        return CheckResult(ok=True, message=f"the service account reads the orders of {api.package}")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Voided purchases from ``ctx.state``; see the module's docstring."""
        api = GooglePlayApi(ctx)
        now = int(ctx.now().timestamp() * 1000)
        start, end = _int(ctx.state.get("startTime")), _int(ctx.state.get("endTime"))
        token = ctx.state.get("token")
        token = token if isinstance(token, str) and token and end is not None else None
        if start is None or start < now - _ms(RETENTION):
            if start is not None:
                ctx.logger.warning("the saved position is older than the 30 days Google lists; reading from the oldest")
            start, end, token = now - _ms(FIRST_WINDOW), None, None
        if token is None or end is None:
            end = now
        restarted = False
        while True:
            asked = token
            try:
                page = api.voided_purchases(start_ms=start, end_ms=end, token=asked, max_results=self.max_results)
            except PermanentError as exc:
                if asked is None or restarted or exc.setting is not None:
                    raise
                ctx.logger.warning("Google refused the saved page token; the window is read again")
                token, restarted = None, True
                continue
            for item in page.items:
                record = voided_envelope(item)
                if record is None:
                    ctx.logger.warning("skipped a voided purchase without order id or purchase token")
                    continue
                yield record
            if page.next_token is None or page.next_token == asked:
                break
            token = page.next_token
            yield {"checkpoint": {"startTime": start, "endTime": end, "token": token}}
        yield {"checkpoint": {"startTime": max(start, end - _ms(OVERLAP))}}

    def verify_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult | None:
        """Verify the push's OIDC token and that the notification is this app's."""
        verify_push(ctx, request)
        return None

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """One envelope per push: id ``messageId``, type from the notification."""
        message_id, notification, published = decode_push(request)
        return WebhookResult(events=[notification_envelope(message_id, notification, published)])


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in Google Play connector with its manifest."""
    register(GooglePlayConnector, builtin_manifest_path("google_play"))
