"""The Adjust connector: daily KPIs from the Report Service, and platform events sent as S2S events.

* ``check``: a one-day Report Service call (``dimensions=app``, ``metrics=installs``) with the API token.
  The S2S token cannot be checked without recording an event: a wrong one shows at the first delivery,
  naming ``s2sToken``.
* ``sync``: ended days' KPI rows, one day per request (``_sync``).
* ``deliver``: ``POST /event`` form-encoded (``_deliver``); Adjust answers ``OK``.

No webhooks: Adjust's callbacks are GET requests with the values in the query string, unsigned; the
manifest does not declare ``handle_webhook``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext, PermanentError
from interlink.hookspecs import hookimpl
from interlink.http import raise_for_status
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

from ._api import app_token, base_urls, bearer
from ._deliver import event_form
from ._sync import probe, sync_days

__all__ = ["AdjustConnector", "register_connectors"]

_ALREADY_TRACKED = "earlier unique event tracked"


class AdjustConnector(Connector):
    """Adjust: the Report Service (read) and the S2S events API (write)."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """Ask for yesterday's installs of the app: proves the token and the app token."""
        rows = probe(ctx)
        return CheckResult(ok=True, message=f"the API token reads the app's reports ({rows} row(s) yesterday)")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Ended days' KPI rows from ``ctx.state["next"]``; see ``_sync``."""
        return sync_days(ctx)

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Send ``event`` as an S2S event; see ``_deliver``."""
        form = event_form(event, ctx.settings, app_token(ctx.settings), idempotency_key)
        _, s2s = base_urls(ctx.settings)
        headers = {"Accept": "*/*"}
        authorization = bearer(ctx.settings.get("s2sToken"))
        if authorization is not None:
            headers["Authorization"] = authorization
        response = ctx.http.post(f"{s2s}/event", data=form, headers=headers)
        if 200 <= response.status_code < 300:
            return
        if response.status_code == 400 and _ALREADY_TRACKED in response.text[:400].lower():
            ctx.logger.info("Adjust already tracked this unique event; counted as delivered")
            return
        if response.status_code in (401, 403):
            hint = "update settings.s2sToken" if authorization else "set settings.s2sToken"
            raise PermanentError(
                f"Adjust refused the S2S event's authorization (HTTP {response.status_code}): S2S Security is on for "
                f"the app and the token is missing or wrong — {hint} with the app's S2S token",
                setting="s2sToken",
            )
        raise_for_status(response, setting="baseUrl" if response.is_redirect else "s2sToken")


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in Adjust connector with its manifest."""
    register(AdjustConnector, builtin_manifest_path("adjust"))
