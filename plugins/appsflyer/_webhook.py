"""AppsFlyer Push API messages: the static-token check and the message parsed into an inbound envelope.

The Push API does not sign its messages. The only proof a request comes from AppsFlyer is the static
token configured for the endpoint (``PUT /api/pushapi/v1.0/tokens/app/{app_id}``), which AppsFlyer sends
in a header of your choice (``Authorization`` by default, or ``X-...``). The connector compares that
header (``settings.webhookHeader``) with ``settings.webhookAuthorization`` in constant time. So:

* with no token configured every request is refused (anyone could post events otherwise);
* a body changed in transit cannot be detected, nothing covers it (TLS is the protection; AppsFlyer also
  publishes the IP ranges it sends from, for an allowlist in front of Interlink);
* there is no timestamp to judge staleness: a replayed message gets the id it had (see ``_records``),
  which the core records once per integration.

Messages are POSTed as one JSON object (the event) or sent as a GET with the fields in the query string;
both parse (``/v1/hooks/{id}`` takes POST and GET).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from interlink.connector import ConnectorContext, PermanentError, WebhookRequest

from ._records import event_record

__all__ = ["parse_message", "verify_token"]

SETTING = "webhookAuthorization"
DEFAULT_HEADER = "Authorization"


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def verify_token(ctx: ConnectorContext, request: WebhookRequest) -> None:
    """Accept the request if the configured header carries the configured token; raise PermanentError if not."""
    expected = str(ctx.settings.get(SETTING) or "")
    name = str(ctx.settings.get("webhookHeader") or DEFAULT_HEADER)
    if not expected:
        raise PermanentError(
            "AppsFlyer Push API messages are refused until settings.webhookAuthorization is set: choose a long "
            "random token, save it there and as the Push API endpoint's token in AppsFlyer",
            setting=SETTING,
        )
    sent = request.header(name)
    if sent is None:
        raise PermanentError(
            f"the Push API message carried no {name} header — set the endpoint's token in AppsFlyer to "
            "settings.webhookAuthorization, with settings.webhookHeader as its header name",
            setting=SETTING,
        )
    sent = sent.strip()
    matches = _same(sent, expected) | (" " not in expected and _same(sent, f"Bearer {expected}"))
    if not matches:
        raise PermanentError(
            f"the Push API message's {name} header does not match settings.webhookAuthorization — make the "
            "endpoint's token in AppsFlyer and the setting the same",
            setting=SETTING,
        )


def _messages(request: WebhookRequest) -> list[Mapping[str, Any]]:
    if request.method.upper() == "GET" or not request.body.strip():
        fields = dict(parse_qsl(urlsplit(request.path).query, keep_blank_values=False))
        if not fields:
            raise PermanentError("the Push API message carries no fields (an empty body and query string)")
        return [fields]
    try:
        body = json.loads(request.body)
    except ValueError:
        raise PermanentError("the Push API message body is not JSON") from None
    items = body if isinstance(body, list) else [body]
    if not items or not all(isinstance(item, dict) and item for item in items):
        raise PermanentError("the Push API message is not a JSON object of event fields")
    return items


def parse_message(request: WebhookRequest) -> list[dict[str, Any]]:
    """The envelopes of one Push API request (one event; a JSON list gives one per item)."""
    events = []
    for message in _messages(request):
        if not message.get("event_name") and not message.get("appsflyer_id"):
            raise PermanentError("the Push API message has neither event_name nor appsflyer_id")
        events.append(event_record(message))
    return events
