"""The RevenueCat connector: a backfill of customers, subscriptions and purchases, and webhooks.

* ``check``: ``GET /v2/projects`` with the v2 secret key as ``Authorization: Bearer``.
* ``sync``: RevenueCat has no list of events, so the backfill walks the project's customers
  (``GET /v2/projects/{project_id}/customers``, ``starting_after`` cursors), and for each one pages its
  subscriptions and purchases to the end. Each customer, subscription period and purchase is one inbound
  envelope with a stable id (see ``_records``). After each customer it checkpoints
  ``{"starting_after": <customer id>}``, the API's own cursor: a killed worker resumes after the last
  customer it finished, with no gap (a half-done customer is read again; the core drops the repeats; if
  RevenueCat refuses the saved cursor, say its customer was deleted, the walk starts over). A
  finished walk checkpoints ``{}``, so the next scheduled sync walks again and yields what changed (new
  customers, new billing periods, new purchases). Requests are paced under the per-domain rate limits
  (``_pacing``); a 429 is a TransientError with the vendor's delay.
* ``verify_webhook`` / ``handle_webhook``: see ``_webhook``. The core answers an accepted request 200,
  the only status RevenueCat counts as delivered.

Idempotency keys: RevenueCat takes an ``Idempotency-Key`` only on its virtual-currency POSTs; this
connector only reads, so it sends none.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from interlink.connector import CheckResult, Connector, ConnectorContext, PermanentError, WebhookRequest, WebhookResult
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

from ._api import CUSTOMER_INFORMATION, PROJECT_CONFIGURATION, BadCursor, ResourceMissing, RevenueCatApi
from ._records import customer_record, purchase_record, subscription_record
from ._webhook import parse_event, verify_authorization

__all__ = ["RevenueCatConnector", "register_connectors"]


def _project(settings: Mapping[str, Any]) -> str:
    project = str(settings.get("projectId") or "").strip()
    if not project:
        raise PermanentError("No project — set settings.projectId (proj...)", setting="projectId")
    return project


def _page_size(settings: Mapping[str, Any]) -> int | None:
    size = settings.get("pageSize")
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


def _has_id(item: Mapping[str, Any]) -> bool:
    value = item.get("id")
    return isinstance(value, str | int) and not isinstance(value, bool) and str(value) != ""


class RevenueCatConnector(Connector):
    """RevenueCat REST API v2 (read only) and its webhooks."""

    sleep = staticmethod(time.sleep)
    """How the rate-limit pacing waits; tests replace it with a clock they control."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """List the projects the key can see; the configured project should be one of them."""
        project = _project(ctx.settings)
        api = RevenueCatApi(ctx, self.sleep)
        try:
            page = api.page("/projects", after=None, limit=None, domain=PROJECT_CONFIGURATION)
        except ResourceMissing:
            raise PermanentError(
                "the projects endpoint was not found (HTTP 404) — check settings.baseUrl", setting="baseUrl"
            ) from None
        ids = {str(item.get("id")) for item in page.items}
        if project in ids:
            return CheckResult(ok=True, message=f"the API key reads project {project}")
        if page.next_cursor is None:
            raise PermanentError(
                f"the API key cannot see project {project} — check settings.projectId "
                "(or use a key of that project in settings.apiKey)",
                setting="projectId",
            )
        return CheckResult(ok=True, message="the API key works; the project is not on the first page of projects")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Walk the customers from ``ctx.state["starting_after"]``; see the module's docstring."""
        api = RevenueCatApi(ctx, self.sleep)
        customers = f"/projects/{quote(_project(ctx.settings), safe='')}/customers"
        limit = _page_size(ctx.settings)
        cursor = ctx.state.get("starting_after")
        after = cursor if isinstance(cursor, str) and cursor else None
        restarted = False
        while True:
            requested = after
            try:
                page = api.page(customers, after=requested, limit=limit, domain=CUSTOMER_INFORMATION)
            except (ResourceMissing, BadCursor) as exc:
                if requested is not None and not restarted:  # the saved customer is gone: walk again
                    ctx.logger.warning("the saved cursor was refused; the sync starts again from the first customer")
                    after, restarted = None, True
                    continue
                raise PermanentError(
                    f"RevenueCat has no project {_project(ctx.settings)} for this key — check settings.projectId "
                    f"({exc.message})",
                    setting="projectId",
                ) from None
            for customer in page.items:
                if not _has_id(customer):
                    ctx.logger.warning("skipped a customer without an id")
                    continue
                yield from self._customer(ctx, api, customers, customer, limit)
                after = str(customer["id"])
                yield {"checkpoint": {"starting_after": after}}
            if page.next_cursor is None or page.next_cursor == requested:  # the end, or no progress
                break
            after = page.next_cursor
        if api.pacer.waited:
            ctx.logger.info("paced under the rate limits: waited %.1f s", api.pacer.waited)
        yield {"checkpoint": {}}

    def _customer(
        self,
        ctx: ConnectorContext,
        api: RevenueCatApi,
        customers: str,
        customer: Mapping[str, Any],
        limit: int | None,
    ) -> Iterator[dict[str, Any]]:
        """One customer's records: itself, each subscription period, each purchase."""
        yield customer_record(customer)
        path = f"{customers}/{quote(str(customer['id']), safe='')}"
        try:
            for item in api.each(f"{path}/subscriptions", limit=limit, domain=CUSTOMER_INFORMATION):
                if _has_id(item):
                    yield subscription_record(item, customer)
            for item in api.each(f"{path}/purchases", limit=limit, domain=CUSTOMER_INFORMATION):
                if _has_id(item):
                    yield purchase_record(item, customer)
        except ResourceMissing:  # deleted between the listing and now: nothing left to read
            ctx.logger.info("a customer disappeared during the sync; skipped")

    def verify_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult | None:
        """Compare the Authorization header with ``settings.webhookAuthorization`` (constant time)."""
        verify_authorization(ctx, request)
        return None

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """One envelope per request: id ``event.id``, type ``event.type`` (``RENEWAL``, ...)."""
        return WebhookResult(events=[parse_event(request)])


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in RevenueCat connector with its manifest."""
    register(RevenueCatConnector, builtin_manifest_path("revenuecat"))
