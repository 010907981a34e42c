"""The App Store Connect connector: App Store Server Notifications V2, and their history as the sync.

* ``check``: one read of the notification history for the last hour (``POST
  /inApps/v1/notifications/history``), with an ES256 token signed from ``settings.privateKey`` (``_token``):
  it proves key, key id, issuer id and bundle id together, and has no side effect (``/notifications/test``
  would send a TEST notification).
* ``sync``: the notification history, chosen over the transaction history because it needs no transaction
  id to start from and yields the same envelopes as the webhooks (same ids: the core records each
  notification once, whichever way it came). A run reads one time window ``[startDate, endDate)``, page by
  page (``paginationToken``), ending at the time the run started; it checkpoints after each page
  (``{startDate, endDate, paginationToken}``) and at the end (``{startDate}``: the next window starts
  :data:`OVERLAP` before this one's end, for notifications Apple files late). The first window starts at the
  oldest date Apple keeps (180 days). A refused pagination token reads the window again from its start.
  History payloads are decoded, not verified again: they come from Apple's API over TLS, asked for with
  our token.
* ``verify_webhook`` / ``handle_webhook``: see ``_webhook`` (x5c chain to a trusted root, Apple's OIDs,
  ES256, this app's bundle and environment, ``signedDate`` at most 10 minutes old); envelopes: ``_records``.

The Server API takes no idempotency key, and this connector only reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext, PermanentError, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

from ._api import AppStoreApi, BadPaginationToken
from ._jws import decode_unverified
from ._records import notification_envelope
from ._webhook import decode_notification, verify_notification

__all__ = ["AppStoreConnectConnector", "register_connectors"]

RETENTION = timedelta(days=180)
"""How long Apple keeps the history: a saved window older than this cannot be read any more."""
FIRST_WINDOW = RETENTION - timedelta(hours=1)
"""How far back the first window starts (an hour inside the retention, so a resumed run may still read it)."""
OVERLAP = timedelta(minutes=10)


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class AppStoreConnectConnector(Connector):
    """App Store Server API (notification history) and App Store Server Notifications V2."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """Read the last hour of the notification history: the token and the bundle work."""
        now = int(ctx.now().timestamp() * 1000)
        AppStoreApi(ctx).notification_history(now - 3_600_000, now, None)
        return CheckResult(ok=True, message="the App Store Server API accepts the key and reads the app's history")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """The notification history from ``ctx.state``; see the module's docstring."""
        api = AppStoreApi(ctx)
        now = int(ctx.now().timestamp() * 1000)
        start, end = _int(ctx.state.get("startDate")), _int(ctx.state.get("endDate"))
        token = ctx.state.get("paginationToken")
        token = token if isinstance(token, str) and token and end is not None else None
        if start is None or start < now - _ms(RETENTION):
            if start is not None:
                ctx.logger.warning("the saved position is older than the 180 days Apple keeps; reading from the oldest")
            start, end, token = now - _ms(FIRST_WINDOW), None, None
        if token is None or end is None:
            end = now
        if start >= end:
            yield {"checkpoint": {"startDate": start}}
            return
        restarted = False
        while True:
            asked = token
            try:
                page = api.notification_history(start, end, asked)
            except BadPaginationToken:
                if asked is None or restarted:
                    raise
                ctx.logger.warning("Apple refused the saved pagination token; the window is read again")
                token, restarted = None, True
                continue
            for jws in page.signed_payloads:
                try:
                    yield notification_envelope(decode_unverified(jws))
                except PermanentError as exc:
                    ctx.logger.warning("skipped a history entry: %s", exc.message)
            if page.next_token is None or page.next_token == asked:
                break
            token = page.next_token
            yield {"checkpoint": {"startDate": start, "endDate": end, "paginationToken": token}}
        yield {"checkpoint": {"startDate": max(start, end - _ms(OVERLAP))}}

    def verify_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult | None:
        """Verify the signed payload (chain, OIDs, signature, app, age); no network call."""
        verify_notification(ctx, request)
        return None

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """One envelope: id ``notificationUUID``, type ``notificationType``."""
        return WebhookResult(events=[notification_envelope(decode_notification(request))])


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in App Store Connect connector with its manifest."""
    register(AppStoreConnectConnector, builtin_manifest_path("app_store_connect"))
