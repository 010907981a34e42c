"""The App Store Server API as this connector speaks it: the base URL, the per-request token, error classes.

Answers are classified as Apple documents them (``{"errorCode": <int>, "errorMessage": "..."}``):

* 401 (and 403): the token was refused — :class:`PermanentError` naming ``privateKey`` (the message names
  ``keyId`` and ``issuerId`` too: Apple does not say which of the three is wrong);
* 429, 5xx, and the retryable codes 4040002/4040004/4040006/5000001: :class:`TransientError`, with the
  ``Retry-After`` delay when one is sent;
* a refused pagination token (4000014 invalid, 4000017 expired): :class:`BadPaginationToken`, so the sync
  reads its window again from the start; any other 4xx: :class:`PermanentError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from interlink.connector import ConnectorContext, PermanentError, TransientError
from interlink.http import raise_for_status

from ._token import bearer_token

__all__ = ["PRODUCTION_URL", "SANDBOX_URL", "AppStoreApi", "BadPaginationToken", "HistoryPage", "base_url"]

PRODUCTION_URL = "https://api.storekit.apple.com"
SANDBOX_URL = "https://api.storekit-sandbox.apple.com"
HISTORY_PATH = "/inApps/v1/notifications/history"
_RETRYABLE = frozenset({4040002, 4040004, 4040006, 5000001})
_BAD_TOKEN = frozenset({4000014, 4000017})


class BadPaginationToken(PermanentError):
    """Apple refused the ``paginationToken`` (invalid or expired)."""


def base_url(settings: Mapping[str, Any]) -> str:
    """``settings.baseUrl``, else Apple's production or sandbox host as ``settings.environment`` says."""
    explicit = str(settings.get("baseUrl") or "").strip().rstrip("/")
    if explicit:
        return explicit
    return SANDBOX_URL if settings.get("environment") == "Sandbox" else PRODUCTION_URL


def _error(response: httpx.Response) -> tuple[int | None, str]:
    try:
        body = response.json()
    except ValueError:
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    code = body.get("errorCode")
    message = body.get("errorMessage")
    return (code if isinstance(code, int) else None), (str(message)[:200] if message else "")


def raise_for_answer(response: httpx.Response) -> None:
    """Return on 2xx; otherwise raise the typed error (see the module's docstring)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    code, message = _error(response)
    detail = (
        f"HTTP {status}" + (f", errorCode {code}" if code is not None else "") + (f": {message}" if message else "")
    )
    if status in (401, 403):
        raise PermanentError(
            f"Apple refused the API token ({detail}) — check settings.keyId, settings.issuerId and "
            "settings.privateKey: they must belong to one active In-App Purchase key of the app's team",
            setting="privateKey",
        )
    if code in _RETRYABLE and status < 500 and status != 429:
        raise TransientError(f"the App Store Server API asks to retry ({detail})", delay=None)
    if code in _BAD_TOKEN:
        raise BadPaginationToken(f"Apple refused the pagination token ({detail})")
    if status == 404 and code is None:
        raise PermanentError(
            f"the App Store Server API answered 404 ({detail}) — check settings.baseUrl", setting="baseUrl"
        )
    if status < 400 or status in (408, 425, 429) or status >= 500:  # a redirect, or worth retrying
        raise_for_status(response, setting="baseUrl")
    raise PermanentError(f"the App Store Server API rejected the request ({detail})")


class HistoryPage:
    """One page of the notification history: the signed payloads, and the token of the next page."""

    __slots__ = ("next_token", "signed_payloads")

    def __init__(self, signed_payloads: list[str], next_token: str | None) -> None:
        self.signed_payloads = signed_payloads
        self.next_token = next_token


class AppStoreApi:
    """The calls of one connector method, with a new token for each."""

    def __init__(self, ctx: ConnectorContext) -> None:
        self._ctx = ctx
        self._root = base_url(ctx.settings)

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {bearer_token(self._ctx.settings, self._ctx.now())}",
            "Accept": "application/json",
        }

    def notification_history(self, start_ms: int, end_ms: int, token: str | None) -> HistoryPage:
        """``POST /inApps/v1/notifications/history`` for ``[start_ms, end_ms)``, the page after ``token``."""
        params = {"paginationToken": token} if token else None
        response = self._ctx.http.post(
            f"{self._root}{HISTORY_PATH}",
            params=params,
            json={"startDate": start_ms, "endDate": end_ms},
            headers=self._headers(),
        )
        raise_for_answer(response)
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        items = body.get("notificationHistory") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(items, list):
            raise PermanentError(
                "the answer to the notification history is not the App Store Server API's JSON — check "
                "settings.baseUrl",
                setting="baseUrl",
            )
        payloads = [
            i["signedPayload"] for i in items if isinstance(i, dict) and isinstance(i.get("signedPayload"), str)
        ]
        token = body.get("paginationToken")
        more = body.get("hasMore") is True and isinstance(token, str) and bool(token)
        return HistoryPage(payloads, str(token) if more else None)
