"""An Adjust emulator (``vendors.md`` section 5): the Report Service and the S2S events API.

What it follows:

* auth: the Report Service takes ``Authorization: Bearer <api_key>``, else 401 ``{"error": ...}``. S2S
  events take the app's S2S token as ``Authorization: Bearer`` when "S2S Security" is on
  (:attr:`AdjustEmulator.s2s_token` set, the default), else 401;
* ``GET /reports-service/report``: ``dimensions``, ``metrics`` and ``date_period`` (``YYYY-MM-DD:YYYY-MM-DD``)
  required, else 400; ``app_token__in`` filters. The answer is ``{"rows", "totals", "warnings"}``, one row
  per value of the requested dimensions with the metrics summed (numbers);
* ``POST /event`` (form-encoded, or the query string): ``app_token``, ``event_token``, ``s2s=1`` and one
  device id required, else 400 ``{"error": ...}``; unknown app or event token: 400. Success is 200 ``OK``.
  Recorded events are in :attr:`AdjustEmulator.events` (no deduplication: Adjust has none);
* rate limits (base class): 429 with ``Retry-After``.

Seed rows with :meth:`add_row`. Control path: ``GET /_emulator/events`` lists the S2S events received.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from interlink.testing.emulators.base import Emulator, Request, Response

__all__ = ["DEVICE_PARAMS", "AdjustEmulator"]

DEVICE_PARAMS = ("idfa", "gps_adid", "adid", "fire_adid", "oaid", "idfv", "web_uuid", "android_id")
_METRICS = ("installs", "clicks", "impressions", "sessions", "cost", "revenue")
EVENT_TOKENS = {"order.created": "abc123", "subscription.created": "def456", "customer.created": "ghi789"}


def _period(value: str | None) -> tuple[date, date] | None:
    first, sep, last = (value or "").partition(":")
    try:
        return (date.fromisoformat(first), date.fromisoformat(last)) if sep else None
    except ValueError:
        return None


class AdjustEmulator(Emulator):
    """Adjust on 127.0.0.1: one app (:attr:`app_token`) whose KPI rows tests add."""

    service: ClassVar[str] = "adjust"
    default_api_key: ClassVar[str] = "adj_api_token_emulator_0123456789"
    default_s2s_token: ClassVar[str] = "adj_s2s_token_emulator_9876543210"  # noqa: S105

    def __init__(
        self,
        *,
        api_key: str | None = None,
        webhook_secret: str | None = None,
        s2s_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        app_token: str = "abcdef123456",  # noqa: S107
    ) -> None:
        super().__init__(api_key=api_key, webhook_secret=webhook_secret, host=host, port=port)
        self.s2s_token: str | None = s2s_token or self.default_s2s_token
        """The S2S Security token; ``None`` turns S2S Security off (no Authorization needed)."""
        self.app_token = app_token
        self.event_tokens = dict(EVENT_TOKENS)
        """Event type to the Adjust event token the emulator knows (any type may map to them)."""
        self.rows: list[dict[str, Any]] = []
        self.events: list[dict[str, str]] = []
        self._sequence = 0

    # -- seeding ----------------------------------------------------------------------------------

    def add_row(self, day: date, network: str, campaign: str, **metrics: float) -> dict[str, Any]:
        """A day's figures for one network and campaign of the app (metrics default to small numbers)."""
        with self.lock:
            self._sequence += 1
            n = self._sequence
        row: dict[str, Any] = {
            "day": day.isoformat(),
            "app": "Emulated App",
            "app_token": self.app_token,
            "network": network,
            "campaign": campaign,
            "installs": n % 50,
            "clicks": n % 500,
            "impressions": n % 5000,
            "sessions": n % 80,
            "cost": round((n % 100) * 1.25, 2),
            "revenue": round((n % 70) * 0.99, 2),
            **metrics,
        }
        with self.lock:
            self.rows.append(row)
        return row

    # -- what the conformance suite asks ----------------------------------------------------------

    def integration_settings(self) -> dict[str, Any]:
        return {
            "baseUrl": self.url,
            "apiKey": self.api_key,
            "appToken": self.app_token,
            "s2sToken": self.s2s_token or self.default_s2s_token,
            "eventTokens": [f"{kind}={token}" for kind, token in self.event_tokens.items()],
            "environment": "production",
            "lookbackDays": 7,
        }

    def seed_records(self, count: int) -> None:
        """Rows over the seven days before today (UTC), each its own network and campaign."""
        today = datetime.now(UTC).date()
        for _ in range(count):
            with self.lock:
                n = self._sequence + 1
            self.add_row(today - timedelta(days=1 + n % 7), f"Network {n}", f"campaign-{n}")

    def sample_event(self) -> dict[str, Any] | None:
        data = {"id": "order-42", "gps_adid": "38400000-8cf0-11bd-b23e-10b96e40000d", "amount": 999, "currency": "EUR"}
        return {"id": "evt_sample", "type": "order.created", "occurred_at": "2026-01-01T00:00:00Z", "data": data}

    # -- the vendor's contract --------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        expected = f"Bearer {self.api_key}"
        if request.path.startswith("/reports-service/") and request.headers.get("authorization", "") != expected:
            return Response(401, {"error": "Authentication failed: invalid or missing API token"})
        return None

    def control(self, request: Request) -> Response | None:
        if request.method == "GET" and request.path == "/_emulator/events":
            with self.lock:
                return Response(200, {"events": list(self.events)})
        return super().control(request)

    def route(self, request: Request) -> Response:
        if request.path == "/reports-service/report" and request.method == "GET":
            return self._report(request)
        if request.path == "/event" and request.method in ("GET", "POST"):
            return self._event(request)
        return Response(404, {"error": f"{request.method} {request.path} is not emulated"})

    def _report(self, request: Request) -> Response:
        dimensions = [d for d in (request.arg("dimensions") or "").split(",") if d]
        metrics = [m for m in (request.arg("metrics") or "").split(",") if m]
        period = _period(request.arg("date_period"))
        if not dimensions or not metrics or period is None:
            return Response(400, {"error": "dimensions, metrics and date_period (YYYY-MM-DD:YYYY-MM-DD) are required"})
        unknown = [m for m in metrics if m not in _METRICS]
        if unknown:
            return Response(400, {"error": f"unknown metrics: {', '.join(unknown)}"})
        apps = {a for a in (request.arg("app_token__in") or "").split(",") if a}
        first, last = period
        grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
        with self.lock:
            rows = list(self.rows)
        for row in rows:
            if (apps and row["app_token"] not in apps) or not first.isoformat() <= row["day"] <= last.isoformat():
                continue
            key = tuple(row.get(d) for d in dimensions)
            out = grouped.setdefault(key, {**{d: row.get(d) for d in dimensions}, **dict.fromkeys(metrics, 0)})
            for metric in metrics:
                out[metric] = round(out[metric] + row.get(metric, 0), 2)
        answer = list(grouped.values())
        totals = {m: round(sum(r[m] for r in answer), 2) for m in metrics}
        return Response(200, {"rows": answer, "totals": totals, "warnings": []})

    def _event(self, request: Request) -> Response:
        if self.s2s_token is not None and request.headers.get("authorization", "") != f"Bearer {self.s2s_token}":
            return Response(401, {"error": "Event request failed (S2S security: missing or invalid token)"})
        fields: dict[str, str] = {k: v[0] for k, v in request.query.items() if v}
        if request.method == "POST":
            fields |= {k: v[0] for k, v in request.form().items() if v}
        missing = [f for f in ("app_token", "event_token") if not fields.get(f)]
        if fields.get("s2s") != "1":
            missing.append("s2s=1")
        if not any(fields.get(p) for p in DEVICE_PARAMS):
            missing.append("a device id")
        if missing:
            return Response(400, {"error": f"Event request failed (missing {', '.join(missing)})"})
        if fields["app_token"] != self.app_token:
            return Response(400, {"error": "Event request failed (App token not found)"})
        if fields["event_token"] not in self.event_tokens.values():
            return Response(400, {"error": "Event request failed (Event token not found)"})
        with self.lock:
            self.events.append(fields)
        return Response(200, "OK", content_type="text/plain")

    def event_fields(self) -> list[Mapping[str, str]]:
        """The S2S events received, oldest first."""
        with self.lock:
            return list(self.events)
