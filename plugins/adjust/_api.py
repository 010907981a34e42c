"""Adjust's hosts, credentials and error answers, as the connector speaks them.

Hosts: the Report Service is ``https://automate.adjust.com`` and S2S events go to ``https://s2s.adjust.com``.
One setting, ``baseUrl``, chooses both:

* unset: those two hosts;
* an ``adjust.com`` host: the Report Service goes there, S2S events to ``s2s.adjust.com``;
* any other URL (a proxy, an emulator): everything goes there, under the same paths
  (``/reports-service/...`` and ``/event``).

Credentials: the API token (``apiKey``) as ``Authorization: Bearer`` on the Report Service; the S2S token
(``s2sToken``), when set, as ``Authorization: Bearer`` on S2S events (required when the app has "S2S
Security" on). Adjust documents no error body; answers are classified by status
(:func:`interlink.http.raise_for_status`): 429/5xx transient with ``Retry-After``, 401/403 name the
credential, other 4xx are permanent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from interlink.connector import PermanentError

__all__ = ["REPORT_HOST", "S2S_HOST", "app_token", "base_urls", "bearer"]

REPORT_HOST = "https://automate.adjust.com"
S2S_HOST = "https://s2s.adjust.com"


def base_urls(settings: Mapping[str, Any]) -> tuple[str, str]:
    """``(Report Service base, S2S base)``, without trailing slashes (see the module's docstring)."""
    base = str(settings.get("baseUrl") or "").strip().rstrip("/")
    if not base:
        return REPORT_HOST, S2S_HOST
    host = (urlsplit(base).hostname or "").lower()
    if host == "adjust.com" or host.endswith(".adjust.com"):
        return base, S2S_HOST
    return base, base


def bearer(value: object) -> str | None:
    """``Bearer <token>`` for a token setting (pasted with its scheme or not); ``None`` when empty."""
    token = str(value or "").strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return f"Bearer {token}" if token else None


def app_token(settings: Mapping[str, Any]) -> str:
    """``settings.appToken``, or a PermanentError naming it."""
    token = str(settings.get("appToken") or "").strip()
    if not token:
        raise PermanentError(
            "No app token — set settings.appToken (Adjust dashboard: app settings)", setting="appToken"
        )
    return token
