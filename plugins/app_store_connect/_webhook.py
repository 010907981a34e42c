"""App Store Server Notifications V2: the ``{"signedPayload": JWS}`` body verified, then decoded.

Apple authenticates a notification by signing it, not with a header: verification (see ``_jws``) needs no
secret, only the trusted root, and covers the whole notification. Then the payload must be this app's:

* ``bundleId`` equal to ``settings.bundleId``;
* ``environment`` equal to ``settings.environment`` (Production unless set; Xcode and LocalTesting payloads,
  whose chains Apple does not sign, are refused);
* on Production, ``appAppleId`` equal to ``settings.appAppleId`` when that is set.

Staleness: ``signedDate`` may be at most :data:`MAX_AGE` (10 minutes) before ``request.received_at`` and at
most :data:`MAX_SKEW` (5 minutes) after it. A captured notification replayed later is refused. So is a retry
Apple sends an hour or more after a failed delivery, if it keeps its first ``signedDate``: the sync reads
the notification history, which holds every notification sent, so such a notification still arrives (once:
its ``notificationUUID`` is the envelope id).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from interlink.connector import ConnectorContext, PermanentError, WebhookRequest

from ._jws import ROOTS_SETTING, decode_unverified, trusted_roots, verify_signed

__all__ = ["MAX_AGE", "MAX_SKEW", "decode_notification", "signed_payload", "verify_notification"]

MAX_AGE = timedelta(minutes=10)
MAX_SKEW = timedelta(minutes=5)


def signed_payload(request: WebhookRequest) -> str:
    """The JWS of a notification body; PermanentError when the body is not ``{"signedPayload": "..."}``."""
    try:
        body = json.loads(request.body)
    except ValueError:
        raise PermanentError("the App Store notification body is not JSON") from None
    jws = body.get("signedPayload") if isinstance(body, dict) else None
    if not isinstance(jws, str) or not jws:
        raise PermanentError(
            'the body carries no "signedPayload": App Store Server Notifications must be set to Version 2'
        )
    return jws


def _app_fields(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Where the notification names its app: ``data``, or ``summary``/``externalPurchaseToken``/``appData``."""
    for key in ("data", "summary", "externalPurchaseToken", "appData"):
        value = payload.get(key)
        if isinstance(value, Mapping):
            return value
    return {}


def _check_age(payload: Mapping[str, Any], received_at: datetime) -> None:
    signed = datetime.fromtimestamp(float(payload["signedDate"]) / 1000.0, UTC)
    if received_at - signed > MAX_AGE:
        minutes = int((received_at - signed).total_seconds() // 60)
        raise PermanentError(
            f"the notification was signed {minutes} minutes before it arrived (at most "
            f"{int(MAX_AGE.total_seconds() // 60)} are accepted): a replay, or a late retry, which the sync reads "
            "from the notification history instead"
        )
    if signed - received_at > MAX_SKEW:
        raise PermanentError("the notification is signed with a date in the future; check this server's clock")


def _check_app(settings: Mapping[str, Any], payload: Mapping[str, Any]) -> None:
    app = _app_fields(payload)
    bundle = str(settings.get("bundleId") or "")
    if app.get("bundleId") != bundle:
        raise PermanentError(
            f"the notification is for bundle {str(app.get('bundleId'))[:100]!r}, not settings.bundleId "
            f"({bundle!r}) — point this app's notification URL here, or correct settings.bundleId",
            setting="bundleId",
        )
    environment = str(settings.get("environment") or "Production")
    if "environment" in app and app.get("environment") != environment:
        raise PermanentError(
            f"the notification comes from the {str(app.get('environment'))[:20]} environment, but "
            f"settings.environment is {environment} — use one integration per environment",
            setting="environment",
        )
    expected = settings.get("appAppleId")
    if environment == "Production" and expected is not None and app.get("appAppleId") != expected:
        raise PermanentError(
            "the notification's appAppleId is not settings.appAppleId — correct the setting",
            setting="appAppleId",
        )


def verify_notification(ctx: ConnectorContext, request: WebhookRequest) -> dict[str, Any]:
    """The verified payload of a notification request; PermanentError naming the setting when it is refused."""
    jws = signed_payload(request)
    roots = trusted_roots(str(ctx.settings.get(ROOTS_SETTING) or "") or None)
    payload = verify_signed(jws, roots)
    _check_age(payload, request.received_at)
    _check_app(ctx.settings, payload)
    return payload


def decode_notification(request: WebhookRequest) -> dict[str, Any]:
    """The payload of a notification :func:`verify_notification` accepted (not verified again)."""
    return decode_unverified(signed_payload(request))
