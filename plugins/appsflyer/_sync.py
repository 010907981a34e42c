"""The raw-data pull, one report and one UTC day at a time.

The Raw Data Pull API (``GET /api/raw-data/export/app/{app_id}/{report}/v5?from=D&to=D``) answers CSV
and has no cursor, so the sync cuts the time itself: each configured report (``settings.reports``) is
read day by day, from the day after the last complete one to today, and checkpoints after every day:
``{"next": {"<report>": "<first day to read again>"}}``.

* A day counts as complete :data:`SETTLE` after it ends (AppsFlyer's raw data arrives with a delay);
  until then it is read again by every sync, and the core drops the events it already has (their ids
  are stable, see ``_records``). The first sync reads ``settings.lookbackDays`` days back.
* AppsFlyer serves only the last 90 days: a saved day older than that (an integration paused for months)
  starts at the oldest day still served, and the gap is logged.
* Each response is streamed and parsed row by row: memory does not grow with the report.
* Quotas are per report and per day (installs 24 calls per app, in-app events 12, ...): at the default
  6-hour interval a sync reads one or two days per report. A spent quota is a TransientError that waits
  for 00:00 UTC; the days already read stay checkpointed.
* Some clients report a 3xx to a download URL (unconfirmed): it is followed once, and the token is sent
  only to the origin of ``baseUrl``.
* A day whose report reaches AppsFlyer's row cap (200,000) may be cut short: a warning says so.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx

from interlink.connector import ConnectorContext, PermanentError

from ._api import api_headers, app_id, base_urls, raise_for_api
from ._records import event_record

__all__ = ["DEFAULT_REPORTS", "SETTLE", "sync_reports"]

DEFAULT_REPORTS = ("installs_report", "in_app_events_report")
DEFAULT_LOOKBACK_DAYS = 7
SERVED_DAYS = 90
SETTLE = timedelta(hours=6)
ROW_CAP = 200_000
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _reports(settings: Mapping[str, Any]) -> list[str]:
    chosen = settings.get("reports")
    if isinstance(chosen, list) and chosen:
        return list(dict.fromkeys(str(r) for r in chosen))
    return list(DEFAULT_REPORTS)


def _lookback(settings: Mapping[str, Any]) -> int:
    days = settings.get("lookbackDays")
    if isinstance(days, int) and not isinstance(days, bool) and days > 0:
        return min(days, SERVED_DAYS)
    return DEFAULT_LOOKBACK_DAYS


def _day(value: object) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _lines(response: httpx.Response) -> Iterator[str]:
    """The body's lines with their ``\\n``, as they arrive: csv needs the ends to read quoted newlines."""
    carry = ""
    for chunk in response.iter_text():
        carry += chunk
        *whole, carry = carry.split("\n")
        for line in whole:
            yield line + "\n"
    if carry:
        yield carry


def _rows(response: httpx.Response) -> Iterator[dict[str, str]]:
    """Each CSV row as ``{column: value}``, empty cells left out."""
    reader = csv.reader(_lines(response))
    header = next(reader, None)
    if not header:
        return
    header = [h.lstrip("\ufeff").strip() for h in header]
    for cells in reader:
        if cells:
            yield {name: value for name, value in zip(header, cells, strict=False) if value != ""}


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


class _Report:
    """One report's days, read through ``ctx.http``."""

    def __init__(self, ctx: ConnectorContext) -> None:
        self.ctx = ctx
        self.base = base_urls(ctx.settings)[0]
        self.app = app_id(ctx.settings)
        self.headers = api_headers(ctx.settings, accept="text/csv")

    def day(self, report: str, day: date) -> Iterator[dict[str, Any]]:
        """The envelopes of one report's events on ``day`` (UTC)."""
        url = f"{self.base}/api/raw-data/export/app/{quote(self.app, safe='')}/{quote(report, safe='')}/v5"
        params = {"from": day.isoformat(), "to": day.isoformat()}
        with self.ctx.http.stream("GET", url, params=params, headers=self.headers) as response:
            location = response.headers.get("Location")
            if response.status_code in _REDIRECTS and location:
                yield from self._download(urljoin(str(response.url), location), report)
                return
            yield from self._read(response, report, day)

    def _download(self, url: str, report: str) -> Iterator[dict[str, Any]]:
        same = _same_origin(url, self.base)
        if not same and urlsplit(url).scheme != "https":
            raise PermanentError(
                "AppsFlyer redirected the report download to a plain-http host — check settings.baseUrl",
                setting="baseUrl",
            )
        headers = self.headers if same else {"Accept": "text/csv"}  # never the token to another host
        with self.ctx.http.stream("GET", url, headers=headers) as response:
            yield from self._read(response, report, None)

    def _read(self, response: httpx.Response, report: str, day: date | None) -> Iterator[dict[str, Any]]:
        if not 200 <= response.status_code < 300:
            response.read()
            raise_for_api(response, self.ctx.now())
        count = 0
        for row in _rows(response):
            count += 1
            yield event_record(row, report=report)
        if count >= ROW_CAP:
            self.ctx.logger.warning(
                "the %s report of %s has %d rows, AppsFlyer's cap: events past it may be missing",
                report,
                day.isoformat() if day else "a day",
                count,
            )


def sync_reports(ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
    """Yield the events of every configured report, day by day, with a checkpoint after each day."""
    reader = _Report(ctx)
    now = ctx.now().astimezone(UTC)
    today = now.date()
    oldest = today - timedelta(days=SERVED_DAYS - 1)
    first = today - timedelta(days=_lookback(ctx.settings) - 1)
    saved = ctx.state.get("next")
    progress: dict[str, str] = {}
    reports = _reports(ctx.settings)
    for report in reports:  # keep only the reports still configured, with a valid day
        found = _day(saved.get(report)) if isinstance(saved, Mapping) else None
        if found is not None:
            progress[report] = found.isoformat()
    for report in reports:
        day = _day(progress.get(report)) or first
        if day < oldest:
            ctx.logger.warning(
                "the %s report was last read up to %s; AppsFlyer serves only the last %d days, so the sync "
                "starts at %s and the days between are not read",
                report,
                day.isoformat(),
                SERVED_DAYS,
                oldest.isoformat(),
            )
            day = oldest
        resume = day
        while day <= today:
            yield from reader.day(report, day)
            complete = now >= datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) + SETTLE
            if resume == day and complete:
                resume = day + timedelta(days=1)
            progress[report] = resume.isoformat()
            yield {"checkpoint": {"next": dict(progress)}}
            day += timedelta(days=1)
