"""Slack: platform events posted to a channel through a Slack incoming webhook.

Slack answers an incoming webhook with ``200 ok``, or with a plain-text error code: ``400
invalid_payload``, ``403 action_prohibited``, ``404 no_service``, ``404 channel_not_found``, ``410
channel_is_archived`` (permanent: retrying cannot help), ``429`` with ``Retry-After`` when rate limited,
and ``5xx`` when Slack is down (transient). See https://api.slack.com/messaging/webhooks.

The webhook URL is the credential: anyone holding it can post to the channel. It is a ``writeOnly``
setting, so the core encrypts it and masks it in the communication log.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import httpx
from interlink.connector import Connector, ConnectorContext, PermanentError
from interlink.hookspecs import hookimpl
from interlink.http import raise_for_status, transient_from_transport_error
from interlink.registry import Register
from interlink.secrets import MASK

__all__ = ["MAX_TEXT", "SlackConnector", "register_connectors", "summary"]

MAX_TEXT = 4000
"""Slack truncates a message's text at 40,000 characters and advises at most 4,000: stay under that."""

_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SETTING_AT_FAULT = {
    # The webhook itself is gone or refused: a new one must be made in the Slack app.
    "invalid_token": "webhookUrl",
    "no_service": "webhookUrl",
    "no_service_id": "webhookUrl",
    "no_team": "webhookUrl",
    "team_disabled": "webhookUrl",
    "no_active_hooks": "webhookUrl",
    "action_prohibited": "webhookUrl",
    # The channel override names a channel the webhook cannot post to.
    "channel_not_found": "channel",
    "channel_is_archived": "channel",
    "user_not_found": "channel",
    "posting_to_general_channel_denied": "channel",
}


def summary(event: Mapping[str, Any]) -> str:
    """A one-line message: the event type and id, then its data as compact JSON, within :data:`MAX_TEXT`.

    ``&``, ``<`` and ``>`` are escaped as Slack's message formatting requires.
    """
    kind = " ".join(str(event.get("type", "event")).split())
    ident = " ".join(str(event.get("id", "")).split())
    data = json.dumps(event.get("data"), separators=(",", ":"), ensure_ascii=False, sort_keys=True, default=str)
    text = f"{kind} {ident}: {data}".replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(text) <= MAX_TEXT:
        return text
    return re.sub(r"&[a-z]*$", "", text[: MAX_TEXT - 1]) + "…"


class SlackConnector(Connector):
    """Posts each event to the incoming webhook as ``{"text": ...}``."""

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """POST the event's summary to ``settings.webhookUrl``; ``200 ok`` is success.

        Slack takes no idempotency key: the message carries the event id, so a person can spot the rare
        duplicate that a retry after a lost ``200`` posts.
        """
        payload: dict[str, str] = {"text": summary(event)}
        for key in ("channel", "username"):
            if ctx.settings.get(key):
                payload[key] = str(ctx.settings[key])
        url = str(ctx.settings["webhookUrl"])
        try:
            with _masked_in_httpx_logs(url):
                response = ctx.http.post(url, json=payload)
        except httpx.TransportError as exc:  # timeout, refused or reset: Slack may be back soon
            raise transient_from_transport_error(exc) from None
        _raise_for_slack(response)


_SENDING_TO: ContextVar[tuple[str, ...]] = ContextVar("interlink_slack_sending_to", default=())


class _MaskWebhookUrl(logging.Filter):
    """httpx logs ``HTTP Request: POST <url> ...`` at INFO. For Slack the URL is the credential: while
    :class:`SlackConnector` sends (on this thread or task), mask it in the records of the ``httpx`` logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        forms = _SENDING_TO.get()
        if forms:
            message = record.getMessage()
            if any(form in message for form in forms):
                for form in forms:
                    message = message.replace(form, MASK)
                record.msg, record.args = message, ()
        return True


_HTTPX_FILTER = _MaskWebhookUrl()


@contextmanager
def _masked_in_httpx_logs(url: str) -> Iterator[None]:
    logger = logging.getLogger("httpx")
    if _HTTPX_FILTER not in logger.filters:
        logger.addFilter(_HTTPX_FILTER)
    forms = sorted({url, str(httpx.URL(url))}, key=len, reverse=True)
    token = _SENDING_TO.set(tuple(forms))
    try:
        yield
    finally:
        _SENDING_TO.reset(token)


def _raise_for_slack(response: httpx.Response) -> None:
    """Return on 2xx; raise the typed error for Slack's answer, naming the setting to fix."""
    status = response.status_code
    if status < 300:
        return
    if status < 400 or status in (408, 425, 429) or status >= 500:
        # 429 and 5xx: TransientError with Retry-After as its delay; 3xx: the URL is wrong.
        raise_for_status(response, setting="webhookUrl")
    text = response.text.strip()
    code = text if _CODE.match(text) else ""
    setting = _SETTING_AT_FAULT.get(code) or ("webhookUrl" if status in (401, 403, 404, 410) else None)
    answer = f"HTTP {status}" + (f": {code}" if code else "")
    if setting == "webhookUrl":
        raise PermanentError(
            f"Slack refused the incoming webhook ({answer}): it was removed, disabled or mistyped. Create a new "
            "one in your Slack app ('Incoming Webhooks') and update settings.webhookUrl",
            setting=setting,
        )
    if setting == "channel":
        raise PermanentError(
            f"Slack cannot post to the channel ({answer}): correct settings.channel, or remove it to post to "
            "the webhook's own channel",
            setting=setting,
        )
    raise PermanentError(f"Slack rejected the message ({answer})")


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the Slack connector with its manifest."""
    register(SlackConnector, Path(__file__).with_name("manifest.json"))
