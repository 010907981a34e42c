"""The AppsFlyer connector: Push API messages in, raw-data pulls, and S2S in-app events out.

* ``check``: ``GET /api/mng/apps`` (App List API) with the API V2 token; the configured ``appId`` should
  be among the apps. The S2S dev key cannot be checked without recording an event: a wrong one shows at
  the first delivery, naming ``devKey``.
* ``sync``: the Raw Data Pull API, report by report and day by day (``_sync``).
* ``deliver``: ``POST /inappevent/{app_id}`` with the dev key (``_deliver``); AppsFlyer answers ``200 ok``.
* ``verify_webhook`` / ``handle_webhook``: the Push API's static token, and its messages (``_webhook``).

Hosts: ``baseUrl`` chooses the API host and the S2S host together (``_api``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from interlink.connector import CheckResult, Connector, ConnectorContext, PermanentError, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.http import raise_for_status
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

from ._api import api_headers, app_id, base_urls, raise_for_api
from ._deliver import s2s_body
from ._sync import sync_reports
from ._webhook import parse_message, verify_token

__all__ = ["AppsFlyerConnector", "register_connectors"]


def _dev_key(settings: Mapping[str, Any]) -> str:
    key = str(settings.get("devKey") or "").strip()
    if not key:
        raise PermanentError(
            "No S2S dev key — set settings.devKey (AppsFlyer: App settings, Dev key) to send events",
            setting="devKey",
        )
    return key


def _app_ids(body: Any) -> tuple[set[str], bool]:
    """The app ids of an App List page, and whether another page follows."""
    items = body.get("data") if isinstance(body, dict) else None
    ids: set[str] = set()
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            attributes = item.get("attributes")
            for value in (item.get("id"), attributes.get("app_id") if isinstance(attributes, dict) else None):
                if isinstance(value, str):
                    ids.add(value)
    links = body.get("links") if isinstance(body, dict) else None
    return ids, bool(isinstance(links, dict) and links.get("next"))


class AppsFlyerConnector(Connector):
    """AppsFlyer: App List, Raw Data Pull v5, S2S in-app events and the Push API."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """List the apps the token sees; the configured app should be one of them."""
        app = app_id(ctx.settings)
        base, _ = base_urls(ctx.settings)
        response = ctx.http.get(f"{base}/api/mng/apps", params={"limit": 1000}, headers=api_headers(ctx.settings))
        if response.status_code == 404:
            raise PermanentError(
                "the App List endpoint was not found (HTTP 404) — check settings.baseUrl", setting="baseUrl"
            )
        raise_for_api(response, ctx.now())
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        ids, more = _app_ids(body)
        if app in ids:
            return CheckResult(ok=True, message=f"the API token reads app {app}")
        if ids and not more:
            raise PermanentError(
                f"the API token's account has no app {app} — check settings.appId (or use that account's token in "
                "settings.apiKey)",
                setting="appId",
            )
        return CheckResult(ok=True, message="the API token works; the app was not found on the first page of apps")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """The configured raw-data reports, day by day from ``ctx.state["next"]``; see ``_sync``."""
        return sync_reports(ctx)

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Send ``event`` as an S2S in-app event; see ``_deliver``."""
        body = s2s_body(event, idempotency_key)
        app = app_id(ctx.settings)
        _, s2s = base_urls(ctx.settings)
        headers = {"authentication": _dev_key(ctx.settings), "Content-Type": "application/json"}
        response = ctx.http.post(
            f"{s2s}/inappevent/{quote(app, safe='')}",
            content=json.dumps(body, separators=(",", ":")).encode(),
            headers=headers,
        )
        if 200 <= response.status_code < 300:
            return
        text = response.text[:200].lower()
        if response.status_code in (401, 403) or (response.status_code == 400 and "authenticat" in text):
            raise PermanentError(
                f"AppsFlyer refused the S2S dev key (HTTP {response.status_code}) — update settings.devKey with "
                "the app's dev key",
                setting="devKey",
            )
        raise_for_status(response, setting="baseUrl" if response.is_redirect else "devKey")

    def verify_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult | None:
        """Compare the configured header with ``settings.webhookAuthorization`` (constant time); see ``_webhook``."""
        verify_token(ctx, request)
        return None

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """One envelope per Push API message; see ``_records`` for its id."""
        return WebhookResult(events=parse_message(request))


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in AppsFlyer connector with its manifest."""
    register(AppsFlyerConnector, builtin_manifest_path("appsflyer"))
