"""AppsFlyer's hosts, credentials and error answers, as the connector speaks them.

Hosts: AppsFlyer serves its APIs (App List, Raw Data Pull, Push API configuration) from
``https://hq1.appsflyer.com`` and server-to-server events from ``https://api3.appsflyer.com``. One setting,
``baseUrl``, chooses both:

* unset: those two hosts;
* an ``appsflyer.com`` host (a regional hq, say): the APIs go there, S2S events to ``api3.appsflyer.com``;
* any other URL (a proxy, an emulator): everything goes there, under the same paths
  (``/api/...`` and ``/inappevent/{app_id}``), so one proxy can stand in for both hosts.

Credentials: the API V2 token (``apiKey``) as ``Authorization: Bearer``; the S2S dev key (``devKey``) as
the ``authentication`` header.

Errors (:func:`raise_for_api`): over quota is an HTTP **400** ``Your API call limit has been reached ...``,
not a 429: a :class:`TransientError` whose delay runs to the next 00:00 UTC, when the daily quota resets;
401/403 name ``apiKey``; 404 (an unknown app, or a token of another account) names ``appId``; other 4xx
are permanent; 429/5xx transient with ``Retry-After`` (:func:`interlink.http.raise_for_status`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from interlink.connector import PermanentError, TransientError
from interlink.http import raise_for_status

__all__ = [
    "API_HOST",
    "S2S_HOST",
    "QuotaReached",
    "api_headers",
    "app_id",
    "base_urls",
    "raise_for_api",
    "seconds_to_quota_reset",
]

API_HOST = "https://hq1.appsflyer.com"
S2S_HOST = "https://api3.appsflyer.com"
QUOTA_MESSAGE = "limit has been reached"
"""Part of the 400 body AppsFlyer answers when a report's daily call quota is spent."""


class QuotaReached(TransientError):
    """The daily quota of a raw-data report is spent; ``delay`` runs to the next 00:00 UTC."""


def base_urls(settings: Mapping[str, Any]) -> tuple[str, str]:
    """``(API base, S2S base)``, without trailing slashes (see the module's docstring)."""
    base = str(settings.get("baseUrl") or "").strip().rstrip("/")
    if not base:
        return API_HOST, S2S_HOST
    host = (urlsplit(base).hostname or "").lower()
    if host == "appsflyer.com" or host.endswith(".appsflyer.com"):
        return base, S2S_HOST
    return base, base


def app_id(settings: Mapping[str, Any]) -> str:
    """``settings.appId``; an iOS id given as bare digits gets the ``id`` prefix AppsFlyer requires
    (without it S2S events are answered 200 and silently dropped)."""
    value = str(settings.get("appId") or "").strip()
    if not value:
        raise PermanentError(
            "No app — set settings.appId (id123456789 for iOS, the package name for Android)", setting="appId"
        )
    return f"id{value}" if value.isdigit() else value


def api_headers(settings: Mapping[str, Any], accept: str = "application/json") -> dict[str, str]:
    """The V2 token as ``Authorization: Bearer`` (a token pasted with its scheme works too)."""
    token = str(settings.get("apiKey") or "").strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        raise PermanentError("No API token — set settings.apiKey to an AppsFlyer API V2 token", setting="apiKey")
    return {"Authorization": f"Bearer {token}", "Accept": accept}


def seconds_to_quota_reset(now: datetime) -> float:
    """Seconds from ``now`` to the next 00:00 UTC (plus a minute's margin), when daily quotas reset."""
    moment = now.astimezone(UTC)
    midnight = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
    return (midnight - moment).total_seconds() + 60.0


def _message(response: httpx.Response) -> str:
    try:
        body = json.loads(response.content[:4096] or b"null")
    except ValueError:
        body = None
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body.get("code") or "")[:200]
    try:
        return response.content[:200].decode("utf-8", errors="replace").strip()
    except httpx.ResponseNotRead:
        return ""


def raise_for_api(response: httpx.Response, now: datetime) -> None:
    """Return on 2xx; otherwise raise the typed error of an hq API answer (see the module's docstring)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    message = _message(response)
    if status == 400 and QUOTA_MESSAGE in message.lower():
        raise QuotaReached(
            "AppsFlyer's daily call quota for this report is spent; the sync resumes after 00:00 UTC "
            f"(HTTP 400: {message})",
            delay=seconds_to_quota_reset(now),
        )
    if status in (401, 403):
        raise PermanentError(
            f"AppsFlyer refused the API token (HTTP {status}) — update settings.apiKey with a current API V2 "
            "token (tokens made before 2026-03-10 were revoked)",
            setting="apiKey",
        )
    if status == 404:
        raise PermanentError(
            f"AppsFlyer knows no such app for this token (HTTP 404{': ' + message if message else ''}) — check "
            "settings.appId (and that settings.apiKey belongs to the app's account)",
            setting="appId",
        )
    if 300 <= status < 400:
        raise_for_status(response, setting="baseUrl")
    raise_for_status(response, setting="apiKey")
