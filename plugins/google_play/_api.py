"""The Android Publisher API v3 as this connector speaks it: base URL, access token, voided purchases, errors.

Errors are Google's ``{"error": {code, message, status}}``:

* 401 (the token was refused; one new token is tried first) and 403 (the account lacks the Play Console
  permission "View financial data"): :class:`PermanentError` naming ``serviceAccountJson``;
* 404: no such app for this account — :class:`PermanentError` naming ``packageName``;
* 429 (``RESOURCE_EXHAUSTED``), 408, 5xx: :class:`TransientError` with the ``Retry-After`` delay when sent;
* any other 4xx: :class:`PermanentError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from interlink.connector import ConnectorContext, PermanentError
from interlink.http import raise_for_status

from ._auth import SETTING, access_token

__all__ = ["DEFAULT_BASE_URL", "GooglePlayApi", "VoidedPage", "api_root"]

DEFAULT_BASE_URL = "https://androidpublisher.googleapis.com"
MAX_RESULTS = 1000


def api_root(settings: Mapping[str, Any]) -> str:
    """``settings.baseUrl`` without a trailing ``/androidpublisher/v3``: both readings of it work."""
    url = str(settings.get("baseUrl") or DEFAULT_BASE_URL).strip().rstrip("/")
    return url.removesuffix("/androidpublisher/v3")


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        parts = [str(error.get(k)) for k in ("status", "message") if error.get(k)]
        return ": ".join(parts)[:200]
    return ""


def raise_for_answer(response: httpx.Response, package: str) -> None:
    """Return on 2xx; otherwise raise the typed error (see the module's docstring)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = f"HTTP {status}" + (f", {m}" if (m := _message(response)) else "")
    if status == 401:
        raise PermanentError(
            f"Google refused the service account's access token ({detail}) — update settings.serviceAccountJson",
            setting=SETTING,
        )
    if status == 403:
        raise PermanentError(
            f"the service account may not read this app's orders ({detail}) — invite the account in Play Console "
            "(Users and permissions) with 'View financial data', or update settings.serviceAccountJson",
            setting=SETTING,
        )
    if status == 404:
        raise PermanentError(
            f"Google Play knows no app {package!r} for this account ({detail}) — check settings.packageName",
            setting="packageName",
        )
    if status < 400 or status in (408, 425, 429) or status >= 500:
        raise_for_status(response, setting="baseUrl")
    raise PermanentError(f"the Android Publisher API rejected the request ({detail})")


@dataclass(frozen=True)
class VoidedPage:
    """One page of voided purchases, and the token of the next page (``None`` on the last)."""

    items: list[dict[str, Any]]
    next_token: str | None


class GooglePlayApi:
    """The calls of one connector method, with one access token (renewed once if it is refused)."""

    def __init__(self, ctx: ConnectorContext) -> None:
        self._ctx = ctx
        package = str(ctx.settings.get("packageName") or "").strip()
        if not package:
            raise PermanentError("No package name — set settings.packageName", setting="packageName")
        self.package = package
        self._root = api_root(ctx.settings)
        self._token: str | None = None

    def _get(self, path: str, params: Mapping[str, str]) -> httpx.Response:
        renewed = False
        while True:
            if self._token is None:
                self._token = access_token(self._ctx)
            response = self._ctx.http.get(
                f"{self._root}/androidpublisher/v3/applications/{quote(self.package, safe='')}{path}",
                params=dict(params),
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
            )
            if response.status_code != 401 or renewed:
                return response
            self._token, renewed = None, True  # expired during a long sync: one new token

    def voided_purchases(self, *, start_ms: int, end_ms: int, token: str | None, max_results: int) -> VoidedPage:
        """``GET .../purchases/voidedpurchases`` (in-app and subscriptions, ``type=1``) for the window, or the
        page after ``token`` (Google ignores the times once a token is given)."""
        params = {"type": "1", "maxResults": str(max_results), "startTime": str(start_ms), "endTime": str(end_ms)}
        if token:
            params["token"] = token
        response = self._get("/purchases/voidedpurchases", params)
        raise_for_answer(response, self.package)
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PermanentError(
                "the answer to voidedpurchases.list is not the Android Publisher API's JSON — check settings.baseUrl",
                setting="baseUrl",
            )
        raw = body.get("voidedPurchases")
        items = [item for item in raw if isinstance(item, dict)] if isinstance(raw, list) else []
        paging = body.get("tokenPagination")
        following = paging.get("nextPageToken") if isinstance(paging, dict) else None
        return VoidedPage(items, following if isinstance(following, str) and following else None)
