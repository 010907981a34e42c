"""Adapty's server-side API as the connector speaks it: base URL, ``Api-Key`` auth, profile headers, errors.

Requests carry ``Authorization: Api-Key <secret key>`` and name the profile with ``adapty-customer-user-id``
(the platform's user id) or ``adapty-profile-id`` (Adapty's own). Answers are classified by
:func:`raise_for_answer`: 401/403 name ``apiKey``; 429, 408, 425 and 5xx are transient with the delay of
``Retry-After`` (Adapty documents no rate limit; a 429 is honoured all the same); other 4xx are permanent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from interlink.connector import PermanentError
from interlink.http import raise_for_status

__all__ = ["PREFIX", "api_root", "headers", "raise_for_answer"]

DEFAULT_BASE_URL = "https://api.adapty.io"
PREFIX = "/api/v2/server-side-api"


def api_root(settings: Mapping[str, Any]) -> str:
    """``baseUrl`` up to the API prefix: "the host" and "the server-side API base" readings both work."""
    url = str(settings.get("baseUrl") or DEFAULT_BASE_URL).strip().rstrip("/")
    return url.removesuffix(PREFIX) + PREFIX


def headers(settings: Mapping[str, Any], profile: Mapping[str, str]) -> dict[str, str]:
    """The key and the profile headers (``adapty-customer-user-id`` or ``adapty-profile-id``)."""
    key = str(settings.get("apiKey") or "").strip()
    if key[:8].lower() == "api-key ":  # a key pasted with its scheme
        key = key[8:].strip()
    if not key:
        raise PermanentError(
            "No API key — set settings.apiKey to the Adapty secret key (secret_live_...)", setting="apiKey"
        )
    return {"Authorization": f"Api-Key {key}", "Accept": "application/json", **profile}


def raise_for_answer(response: httpx.Response) -> None:
    """Return on 2xx; otherwise raise the typed error (see the module's docstring)."""
    if response.status_code in (401, 403):
        raise PermanentError(
            f"Invalid API key — update settings.apiKey with the secret key from Adapty's App Settings "
            f"(Adapty answered HTTP {response.status_code})",
            setting="apiKey",
        )
    raise_for_status(response, setting="baseUrl" if response.is_redirect else "apiKey")
