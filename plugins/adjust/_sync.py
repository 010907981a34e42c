"""Daily KPI rows from the Report Service (``GET /reports-service/report``), one day per request.

Adjust's pull API is aggregated only (user-level data comes by callbacks or cloud export). The sync asks
for one day at a time, ``date_period=D:D`` with ``dimensions`` :data:`DIMENSIONS` and ``metrics``
:data:`METRICS`, filtered to ``settings.appToken`` and in UTC (``utc_offset=+00:00``), and checkpoints
``{"next": "<first day not yet read>"}`` after each day. It pages by date only: a paging link in the
answer is not documented.

* Only days that have ended (before today, UTC) are read, each once: a row's id is
  ``<day>:<app token>:<network>:<campaign>``, and the core keeps the first record of an id, so a day read
  while it was still filling would stay incomplete. Figures Adjust revises after the day ended (late cost
  imports, say) are not read again.
* The first sync reads ``settings.lookbackDays`` days back. A later one reads the days since the last.
* One day is one JSON answer, read whole: its size is the number of networks and campaigns of that day,
  not the number of days synced.
* ``data.amount`` is the day's ``revenue`` in minor units and ``data.currency`` the answer's currency,
  USD when the row names none (the Report Service's default reporting currency); ``cost`` and ``revenue``
  are also kept as decimals.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, timedelta
from typing import Any

from interlink.connector import ConnectorContext, PermanentError
from interlink.envelope import envelope
from interlink.http import raise_for_status
from interlink.money import to_minor

from ._api import app_token, base_urls, bearer

__all__ = ["DIMENSIONS", "METRICS", "probe", "report", "sync_days"]

SOURCE = "adjust"
RECORD_TYPE = "kpi_report"
DIMENSIONS = ("day", "app", "network", "campaign")
METRICS = ("installs", "clicks", "impressions", "sessions", "cost", "revenue")
DEFAULT_LOOKBACK_DAYS = 7
_MAX_ID = 200


def _lookback(settings: Mapping[str, Any]) -> int:
    days = settings.get("lookbackDays")
    return days if isinstance(days, int) and not isinstance(days, bool) and days > 0 else DEFAULT_LOOKBACK_DAYS


def _day(value: object) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and "." not in str(value) else number


def report(ctx: ConnectorContext, first: date, last: date, dimensions: str, metrics: str) -> list[dict[str, Any]]:
    """The rows of one Report Service call over ``first``..``last`` (inclusive)."""
    base, _ = base_urls(ctx.settings)
    authorization = bearer(ctx.settings.get("apiKey"))
    if authorization is None:
        raise PermanentError("No API token — set settings.apiKey to your Adjust API token", setting="apiKey")
    params = {
        "date_period": f"{first.isoformat()}:{last.isoformat()}",
        "dimensions": dimensions,
        "metrics": metrics,
        "app_token__in": app_token(ctx.settings),
        "utc_offset": "+00:00",
    }
    if ctx.settings.get("environment") == "sandbox":
        params["sandbox"] = "true"
    headers = {"Authorization": authorization, "Accept": "application/json"}
    response = ctx.http.get(f"{base}/reports-service/report", params=params, headers=headers)
    if response.status_code in (401, 403):
        raise PermanentError(
            f"Adjust refused the API token (HTTP {response.status_code}) — update settings.apiKey with your Adjust "
            "API token (Account settings, My profile)",
            setting="apiKey",
        )
    raise_for_status(response, setting="baseUrl" if response.is_redirect else "apiKey")
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    rows = body.get("rows") if isinstance(body, dict) else body
    if not isinstance(rows, list):
        raise PermanentError("the Report Service answer has no rows list — check settings.baseUrl", setting="baseUrl")
    return [row for row in rows if isinstance(row, dict)]


def _record_id(day: str, token: str, row: Mapping[str, Any]) -> str:
    joined = ":".join([day, token, *(str(row.get(d) or "") for d in DIMENSIONS[2:])])
    if len(joined) <= _MAX_ID:
        return joined
    return f"{day}:{token}:sha256:{hashlib.sha256(joined.encode()).hexdigest()}"


def _record(row: Mapping[str, Any], day: date, token: str) -> dict[str, Any]:
    on = str(row.get("day") or day.isoformat())[:10]
    data: dict[str, Any] = {"day": on, "app_token": token}
    for name in DIMENSIONS[1:]:
        if row.get(name) not in (None, ""):
            data[name] = row[name]
    for name in METRICS:
        number = _number(row.get(name))
        if number is not None:
            data[name] = number
    currency = row.get("currency") if isinstance(row.get("currency"), str) else "USD"
    amount = to_minor(row.get("revenue"), str(currency)) if len(str(currency)) == 3 else None
    if amount is not None:
        data["amount"], data["currency"] = amount, str(currency).upper()
    return envelope(
        id=_record_id(on, token, row),
        type=RECORD_TYPE,
        source=SOURCE,
        occurred_at=f"{on}T00:00:00Z",
        subject={"id": token},
        data=data,
        raw=row,
    )


def sync_days(ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
    """Yield each ended day's KPI rows from ``ctx.state["next"]``, with a checkpoint after each day."""
    token = app_token(ctx.settings)
    today = ctx.now().astimezone(UTC).date()
    day = _day(ctx.state.get("next")) or today - timedelta(days=_lookback(ctx.settings))
    while day < today:
        for row in report(ctx, day, day, ",".join(DIMENSIONS), ",".join(METRICS)):
            yield _record(row, day, token)
        day += timedelta(days=1)
        yield {"checkpoint": {"next": day.isoformat()}}


def probe(ctx: ConnectorContext) -> int:
    """One cheap call for ``check``: yesterday's installs of the app; the number of rows."""
    yesterday = ctx.now().astimezone(UTC).date() - timedelta(days=1)
    return len(report(ctx, yesterday, yesterday, "app", "installs"))
