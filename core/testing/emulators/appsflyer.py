"""An AppsFlyer emulator (``vendors.md`` section 4): App List, Raw Data Pull v5, S2S events, Push API sender.

What it follows:

* auth: ``/api/...`` takes ``Authorization: Bearer <api_key>`` (the API V2 token), else 401
  ``{"message": ...}``; ``/inappevent/{app_id}`` takes the dev key in the ``authentication`` header, else
  400 ``Failed to Authenticate`` (plain text);
* ``GET /api/mng/apps``: ``{"data": [{"id", "type": "app", "attributes"}], "links", "meta"}`` with
  ``limit``/``offset``;
* ``GET /api/raw-data/export/app/{app_id}/{report}/v5?from=&to=``: ``text/csv`` with raw-data column names
  (``AppsFlyer ID``, ``Event Time``, ...), the rows whose event time falls between ``from`` and ``to``
  (days are inclusive; ``yyyy-mm-dd hh:mm[:ss]`` also works), in UTC. ``from`` older than 90 days: 400.
  Unknown app: 404. Daily quotas are off unless a test sets :attr:`AppsFlyerEmulator.quotas`
  (report to calls per day); past one the answer is AppsFlyer's 400 ``Your API call limit has been
  reached for the given report type``;
* ``POST /inappevent/{app_id}``: a JSON body of at most 1 KB with ``appsflyer_id``, ``eventName`` and
  ``eventValue`` (a string) required, else 400 with a plain-text reason; success is 200 ``ok``. An iOS app
  id without its ``id`` prefix is answered 200 and the event dropped, as AppsFlyer does. Recorded events
  are in :attr:`AppsFlyerEmulator.s2s_events` (no deduplication: AppsFlyer has none);
* rate limits (base class): 429 with ``Retry-After``.

Push API: :meth:`send_webhook` posts a message (:meth:`webhook_event`) with the static token in
:attr:`webhook_header`; unsigned and untimestamped, so the conformance suite's tamper and staleness checks
do not apply. Control paths: ``GET /_emulator/s2s-events``; ``POST /_emulator/raw-data/{report}`` adds a
row (a JSON object of column values; ``Event Time`` defaults to now).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import httpx

from interlink.testing.emulators.base import Emulator, Request, Response

__all__ = ["COLUMNS", "AppsFlyerEmulator"]

COLUMNS = (
    "Attributed Touch Type",
    "Attributed Touch Time",
    "Install Time",
    "Event Time",
    "Event Name",
    "Event Value",
    "Event Revenue",
    "Event Revenue Currency",
    "Event Revenue USD",
    "Event Source",
    "Partner",
    "Media Source",
    "Channel",
    "Campaign",
    "Campaign ID",
    "Country Code",
    "IP",
    "AppsFlyer ID",
    "Advertising ID",
    "IDFA",
    "IDFV",
    "Customer User ID",
    "Platform",
    "App Version",
    "App ID",
    "Is Retargeting",
)
"""The raw-data columns the emulator answers with (a subset of AppsFlyer's, in its spelling)."""
REPORTS = frozenset(
    {
        "installs_report",
        "in_app_events_report",
        "organic_installs_report",
        "uninstall_events_report",
        "in-app-events-retarget",
    }
)
QUOTA_MESSAGE = "Your API call limit has been reached for the given report type"
_NO_HEADER = object()


def _text(status: int, message: str) -> Response:
    return Response(status, message, content_type="text/plain")


def _moment(value: str | None, *, end: bool) -> datetime | None:
    """A ``from``/``to`` bound: a day (its start, or the start of the next when ``end``), or a time."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(value.replace(" ", "T"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _af_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


class AppsFlyerEmulator(Emulator):
    """AppsFlyer on 127.0.0.1: one app (:attr:`app_id`) whose raw-data rows tests add."""

    service: ClassVar[str] = "appsflyer"
    default_api_key: ClassVar[str] = "af_v2_emulator_token_0123456789abcdef"
    default_webhook_secret: ClassVar[str] = "af-push-token-emulator-0123456789"  # noqa: S105
    default_dev_key: ClassVar[str] = "afdevkey_emulator_0123456789"

    webhook_signed: ClassVar[bool] = False  # a static token in a header; nothing covers the body
    webhook_timestamped: ClassVar[bool] = False

    def __init__(
        self,
        *,
        api_key: str | None = None,
        webhook_secret: str | None = None,
        dev_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        app_id: str = "id1234567890",
        webhook_header: str = "Authorization",
    ) -> None:
        super().__init__(api_key=api_key, webhook_secret=webhook_secret, host=host, port=port)
        self.dev_key = dev_key or self.default_dev_key
        self.app_id = app_id
        self.webhook_header = webhook_header
        """The header the Push API token is sent in (``Authorization`` or ``X-...``)."""
        self.rows: dict[str, list[dict[str, str]]] = {report: [] for report in REPORTS}
        self.s2s_events: list[dict[str, Any]] = []
        self.quotas: dict[str, int] = {}
        """Calls per report per UTC day; a report not named here has no quota."""
        self._calls: dict[tuple[str, str], int] = {}
        self._sequence = 0

    # -- seeding ----------------------------------------------------------------------------------

    def _next(self) -> int:
        with self.lock:
            self._sequence += 1
            return self._sequence

    def add_event(
        self,
        report: str = "installs_report",
        *,
        event_time: datetime | None = None,
        event_name: str | None = None,
        appsflyer_id: str | None = None,
        revenue: str | None = None,
        currency: str | None = None,
        customer_user_id: str | None = None,
        columns: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Add a raw-data row to ``report`` and return it; ``columns`` set other columns by their name."""
        n = self._next()
        at = event_time or datetime.now(UTC)
        default = "uninstall" if "uninstall" in report else "install" if "install" in report else "af_purchase"
        name = event_name or default
        row = {
            "Attributed Touch Type": "click",
            "Install Time": _af_time(at - timedelta(hours=1) if name not in ("install", "reinstall") else at),
            "Event Time": _af_time(at),
            "Event Name": name,
            "Event Source": "SDK",
            "Media Source": "organic" if report.startswith("organic") else "googleadwords_int",
            "Campaign": "" if report.startswith("organic") else "spring-sale",
            "Country Code": "US",
            "AppsFlyer ID": appsflyer_id or f"{1_700_000_000_000 + n}-{n:019d}",
            "IDFV": str(uuid.UUID(int=n)).upper(),
            "Platform": "ios",
            "App Version": "1.4.0",
            "App ID": self.app_id,
            "Is Retargeting": "false",
        }
        if revenue is not None:
            row.update({"Event Revenue": revenue, "Event Revenue Currency": currency or "USD"})
            row["Event Value"] = json.dumps({"af_revenue": revenue, "af_currency": currency or "USD"})
        if customer_user_id is not None:
            row["Customer User ID"] = customer_user_id
        row.update(columns or {})
        with self.lock:
            self.rows.setdefault(report, []).append(row)
        return row

    # -- what the conformance suite asks ----------------------------------------------------------

    def integration_settings(self) -> dict[str, Any]:
        return {
            "baseUrl": self.url,
            "apiKey": self.api_key,
            "appId": self.app_id,
            "devKey": self.dev_key,
            "webhookAuthorization": self.webhook_secret,
            "webhookHeader": self.webhook_header,
            "reports": ["installs_report", "in_app_events_report"],
            "lookbackDays": 3,
        }

    def seed_records(self, count: int) -> None:
        """Installs and purchases spread over today and the two days before (UTC)."""
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        for i in range(count):
            n = self._next()
            at = today - timedelta(days=i % 3) + timedelta(seconds=(n * 37) % 86_400)
            if i % 2:
                self.add_event("in_app_events_report", event_time=at, revenue="9.99", currency="USD")
            else:
                self.add_event("installs_report", event_time=at)

    def sample_event(self) -> dict[str, Any] | None:
        data = {"appsflyer_id": "1700000000000-0000000000000000001", "order_id": "order-42", "amount": 999}
        data |= {"currency": "USD", "customer_user_id": "user-42"}
        return {"id": "evt_sample", "type": "order.created", "occurred_at": "2026-01-01T00:00:00Z", "data": data}

    def webhook_headers(self, body: bytes, *, secret: str | None = None, sent_at: int | None = None) -> dict[str, str]:
        return {"Content-Type": "application/json", self.webhook_header: secret or self.webhook_secret}

    def sample_webhook(self) -> bytes:
        return json.dumps(self.webhook_event("af_purchase", event_revenue="9.99")).encode()

    # -- the vendor's contract --------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.path.startswith("/inappevent/"):
            if request.headers.get("authentication") != self.dev_key:
                return _text(400, "Failed to Authenticate")
            return None
        if request.path.startswith("/api/"):
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme != "Bearer" or token != self.api_key:
                return Response(401, {"message": "Unauthorized: the API token is missing or invalid"})
        return None

    def control(self, request: Request) -> Response | None:
        if request.method == "GET" and request.path == "/_emulator/s2s-events":
            with self.lock:
                return Response(200, {"events": list(self.s2s_events)})
        prefix = "/_emulator/raw-data/"
        if request.method == "POST" and request.path.startswith(prefix):
            try:
                columns = request.json() or {}
            except ValueError:
                return Response(400, {"error": "the body must be a JSON object of column values"})
            if not isinstance(columns, dict):
                return Response(400, {"error": "the body must be a JSON object of column values"})
            report = request.path[len(prefix) :]
            row = self.add_event(report, columns={str(k): str(v) for k, v in columns.items()})
            return Response(201, {"row": row})
        return super().control(request)

    def route(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if request.method == "POST" and len(parts) == 2 and parts[0] == "inappevent":
            return self._s2s(parts[1], request)
        if request.method == "GET" and parts == ["api", "mng", "apps"]:
            return self._apps(request)
        raw_data = parts[:4] == ["api", "raw-data", "export", "app"] and len(parts) == 7 and parts[6] == "v5"
        if request.method == "GET" and raw_data:
            return self._raw_data(parts[4], parts[5], request)
        return Response(404, {"message": f"{request.method} {request.path} is not emulated"})

    def _apps(self, request: Request) -> Response:
        app = {"id": self.app_id, "type": "app", "attributes": {"name": "Emulated", "platform": "ios"}}
        limit, offset = int(request.arg("limit", "1000") or 1000), int(request.arg("offset", "0") or 0)
        items = [app][offset : offset + limit]
        return Response(200, {"data": items, "links": {}, "meta": {"total_items": 1}})

    def _count(self, report: str) -> bool:
        """Count a call to ``report`` today; False when its quota is spent."""
        with self.lock:
            key = (datetime.now(UTC).date().isoformat(), report)
            used = self._calls.get(key, 0)
            quota = self.quotas.get(report)
            if quota is not None and used >= quota:
                return False
            self._calls[key] = used + 1
            return True

    def _raw_data(self, app: str, report: str, request: Request) -> Response:
        if app != self.app_id:
            return Response(404, {"message": f"Unknown app id {app}"})
        if report not in REPORTS:
            return Response(400, {"message": f"Invalid report type {report}"})
        start, end = _moment(request.arg("from"), end=False), _moment(request.arg("to"), end=True)
        if start is None or end is None:
            return Response(400, {"message": "from and to are required: yyyy-mm-dd or yyyy-mm-dd hh:mm[:ss]"})
        if start < datetime.now(UTC) - timedelta(days=90):
            return Response(400, {"message": "Raw data is available for the last 90 days only"})
        if not self._count(report):
            return Response(400, {"message": QUOTA_MESSAGE})
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        with self.lock:
            rows = list(self.rows.get(report, []))
        for row in rows:
            at = _moment(row.get("Event Time"), end=False)
            if at is not None and start <= at < end:
                writer.writerow([row.get(column, "") for column in COLUMNS])
        return Response(200, out.getvalue(), content_type="text/csv; charset=utf-8")

    def _s2s(self, app: str, request: Request) -> Response:
        if len(request.body) > 1024:
            return _text(400, "Request body is too large (1 KB at most)")
        try:
            body = request.json()
        except ValueError:
            return _text(400, "Invalid JSON body")
        if not isinstance(body, dict):
            return _text(400, "Invalid JSON body")
        missing = [f for f in ("appsflyer_id", "eventName", "eventValue") if f not in body]
        if missing:
            return _text(400, f"Missing required field(s): {', '.join(missing)}")
        if not isinstance(body["eventValue"], str):
            return _text(400, "eventValue must be a string")
        if app.isdigit() and f"id{app}" == self.app_id:
            return _text(200, "ok")  # AppsFlyer drops iOS events sent without the id prefix, and says ok
        if app != self.app_id:
            return _text(400, "Invalid app id")
        with self.lock:
            self.s2s_events.append({"app_id": app, **body})
        return _text(200, "ok")

    # -- Push API ---------------------------------------------------------------------------------

    def webhook_event(self, event_name: str, appsflyer_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """A Push API message with the documented keys (empty ones left out); ``fields`` override them."""
        n = self._next()
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond // 1000:03d}"
        attribution = event_name in ("install", "reinstall", "re-engagement", "re-attribution")
        message: dict[str, Any] = {
            "appsflyer_id": appsflyer_id or f"{1_700_000_000_000 + n}-{n:019d}",
            "event_name": event_name,
            "event_type": "install" if attribution else "in-app-event",
            "event_time": stamp,
            "install_time": stamp,
            "conversion_type": "install",
            "campaign_type": "ua",
            "media_source": "googleadwords_int",
            "campaign": "spring-sale",
            "platform": "ios",
            "app_id": self.app_id,
            "country_code": "US",
            "customer_user_id": "user-42",
        }
        if not attribution:
            message |= {"event_value": '{"af_revenue":"9.99"}', "event_revenue_currency": "USD"}
        message.update(fields)
        return {k: v for k, v in message.items() if v is not None and v != ""}

    def send_webhook(self, url: str, message: Mapping[str, Any], *, token: Any = _NO_HEADER) -> httpx.Response:
        """POST ``message`` to ``url`` as the Push API does, with the static token in :attr:`webhook_header`
        unless ``token`` is given (``None`` sends no token)."""
        value = self.webhook_secret if token is _NO_HEADER else token
        headers = {"Content-Type": "application/json"}
        if value is not None:
            headers[self.webhook_header] = str(value)
        with httpx.Client(timeout=30.0) as client:
            return client.post(url, json=dict(message), headers=headers)
