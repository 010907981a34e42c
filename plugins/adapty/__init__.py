"""The Adapty connector: webhooks in, platform purchases out through the server-side API.

* ``check``: ``GET /api/v2/server-side-api/profile/`` for a probe ``adapty-customer-user-id``. A 401 is a
  bad key; Adapty's 404 (no such profile) or a 200 proves the key works; a 404 without Adapty's error
  body means ``baseUrl`` leads elsewhere.
* ``deliver``: the documented server-side writes (``_deliver``): set transaction for
  ``subscription.created``/``subscription.updated``, revoke access level for ``subscription.cancelled``.
  Adapty has no idempotency key; the transaction id it dedupes on is the platform's, else the event's key.
* ``verify_webhook`` / ``handle_webhook`` (``_webhook``): the Authorization value, then the
  ``adapty_check`` handshake answered at once; events become envelopes with id
  ``event_properties.profile_event_id``.

No ``sync``: Adapty has no API that lists events or purchases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

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

from ._api import api_root, headers, raise_for_answer
from ._deliver import write_for
from ._webhook import handshake, parse_event, verify_authorization

__all__ = ["AdaptyConnector", "register_connectors"]

PROBE_USER = "interlink-connection-check"
"""The customer user id ``check`` looks up; no such profile is expected (a 404 is the good answer)."""


def _adapty_error(response: httpx.Response) -> bool:
    """Whether the body is Adapty's error object (``{errors: [{source, errors}], error_code, status_code}``)."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and ("error_code" in body or "errors" in body)


class AdaptyConnector(Connector):
    """Adapty's server-side API (writes) and its webhooks."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """One profile lookup: 401 means a bad key, 404 (unknown probe profile) a good one."""
        response = ctx.http.get(
            f"{api_root(ctx.settings)}/profile/",
            headers=headers(ctx.settings, {"adapty-customer-user-id": PROBE_USER}),
        )
        if response.status_code == 404:
            if not _adapty_error(response):  # not Adapty's "profile not found": the URL leads elsewhere
                raise PermanentError(
                    "the profile endpoint was not found (HTTP 404) — check settings.baseUrl", setting="baseUrl"
                )
            return CheckResult(ok=True, message="the API key works (the probe profile does not exist, as expected)")
        raise_for_answer(response)
        return CheckResult(ok=True, message="the API key works")

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Record the platform's purchase on the Adapty profile, or revoke its access level."""
        write = write_for(event, ctx.settings, idempotency_key)
        response = ctx.http.post(
            api_root(ctx.settings) + write.path,
            json=write.body,
            headers={**headers(ctx.settings, write.profile), "Content-Type": "application/json"},
        )
        if response.status_code == 404:
            ((name, value),) = write.profile.items()
            raise PermanentError(
                f"Adapty has no profile with {name.removeprefix('adapty-')} {value!r}: the app must identify the "
                "user with Adapty's SDK first"
            )
        raise_for_answer(response)

    def verify_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult | None:
        """The Authorization value first; then a handshake is answered at once and stores nothing."""
        verify_authorization(ctx, request)
        return handshake(request)

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """One envelope per event (none for a handshake)."""
        return WebhookResult(events=parse_event(request))


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in Adapty connector with its manifest."""
    register(AdaptyConnector, builtin_manifest_path("adapty"))
