"""A local Klaviyo API that follows the documented contract (``vendors.md`` section 8), for tests and demos.

What it serves, as Klaviyo does: ``Authorization: Klaviyo-API-Key <key>``, a required ``revision``
header, JSON:API documents (``application/vnd.api+json``) and JSON:API errors
(``{"errors": [{id, status, code, title, detail, source}]}``), and

* ``GET /api/accounts`` — the account, the call Klaviyo offers to test a private key (tier XS);
* ``GET /api/events`` — ``filter`` on ``datetime``/``timestamp`` (greater/less, or-equal), ``metric_id`` and
  ``profile_id`` (``equals``), ``sort`` (``datetime``, ``-datetime``, ``timestamp``, ``-timestamp``),
  ``page[size]`` 1..1000 (default 200), an opaque ``page[cursor]`` in ``links.next``, ``include`` of
  ``metric`` and ``profile``, and sparse ``fields[...]`` (tier XL);
* ``POST /api/events`` — Create Event, validated against Klaviyo's schema, **202** with no body; a repeat
  of a ``unique_id`` for the same profile and metric is accepted and not recorded again (without one, the
  time to the second is the key, as Klaviyo does) (tier XL);
* ``POST /api/event-bulk-create-jobs`` — at most 1000 events and 5 MB per job, **202**; its events are
  recorded like single ones (tier M);
* ``POST /api/profile-import`` — upsert by id, email, phone number or external id: **201** created,
  **200** updated (75/s, 750/min).

Rate limits: each endpoint counts its own fixed windows, burst (1 s) and steady (1 min), and every
non-429 answer carries ``RateLimit-Limit/Remaining/Reset`` of the steady window. The tiers are enforced
(429 with ``Retry-After``, no ``RateLimit-*``) only when :attr:`KlaviyoEmulator.enforce_tiers` is set, so
that ordinary tests are not throttled; :attr:`KlaviyoEmulator.clock` can be replaced to make windows exact.

What it received stays inspectable: :attr:`KlaviyoEmulator.events` (every recorded event: ``id``,
``metric``, ``profile_id``, ``profile`` as sent, ``unique_id``, ``properties``, ``datetime``, ``value``,
``value_currency``, ``via``), :attr:`KlaviyoEmulator.profiles` (by id) and
:attr:`KlaviyoEmulator.bulk_jobs`. Webhooks: :meth:`KlaviyoEmulator.sign` and
:meth:`KlaviyoEmulator.send_webhook` post signed system-webhook batches.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import hmac
import json
import math
import operator
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import partial
from itertools import islice
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from interlink.testing.emulators.base import Emulator, Request, Response

__all__ = ["ACCOUNT_ID", "MEDIA_TYPE", "TIERS", "KlaviyoEmulator", "jsonapi_error"]

MEDIA_TYPE = "application/vnd.api+json"
ACCOUNT_ID = "EmuAcc"
TIERS: dict[str, tuple[int, int]] = {
    "XS": (1, 15),
    "S": (3, 60),
    "M": (10, 150),
    "L": (75, 700),
    "XL": (350, 3500),
    "profile-import": (75, 750),
}
"""Burst (per second) and steady (per minute) limits of each tier."""
_ROUTES: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/api/accounts"): ("_get_accounts", "XS"),
    ("GET", "/api/events"): ("_get_events", "XL"),
    ("POST", "/api/events"): ("_create_event", "XL"),
    ("POST", "/api/event-bulk-create-jobs"): ("_bulk_create", "M"),
    ("POST", "/api/profile-import"): ("_import_profile", "profile-import"),
}
_REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
_CONDITION = re.compile(r"^([a-z-]+)\(\s*([a-z_]+)\s*,\s*(.+?)\s*\)$")
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "greater-than": operator.gt,
    "greater-or-equal": operator.ge,
    "less-than": operator.lt,
    "less-or-equal": operator.le,
}
_EVENT_ATTRIBUTES = frozenset({"properties", "time", "value", "value_currency", "unique_id", "backfill", "metric"})
_PROFILE_IDS = ("email", "phone_number", "external_id", "anonymous_id", "_kx")
_PROFILE_ATTRIBUTES = frozenset(
    {*_PROFILE_IDS, "first_name", "last_name", "organization", "locale", "title", "image", "location", "properties"}
)
_ULID = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MAX_BODY = 5 * 1024 * 1024


def jsonapi_error(
    status: int, code: str, title: str, detail: str, *, pointer: str | None = None, parameter: str | None = None
) -> Response:
    """Klaviyo's error answer: ``{"errors": [{id, status, code, title, detail, source}]}``."""
    source = {"pointer": pointer} if pointer else {"parameter": parameter} if parameter else {"pointer": "/data/"}
    error = {"id": str(uuid.uuid4()), "status": status, "code": code, "title": title, "detail": detail}
    return Response(status, {"errors": [{**error, "source": source}]}, content_type=MEDIA_TYPE)


def _invalid(detail: str, *, pointer: str | None = None, parameter: str | None = None) -> Response:
    return jsonapi_error(400, "invalid", "Invalid input.", detail, pointer=pointer, parameter=parameter)


class KlaviyoEmulator(Emulator):
    """A Klaviyo API on 127.0.0.1; see the module docstring. ``clock`` (unix seconds) may be replaced by tests."""

    service: ClassVar[str] = "klaviyo"
    default_api_key: ClassVar[str] = "pk_emulator_0123456789abcdef0123"
    default_webhook_secret: ClassVar[str] = "klaviyo_webhook_secret_0123456789"  # noqa: S105
    webhook_id: ClassVar[str] = "01JEMUWEBHOOK0000000000000"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        webhook_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        enforce_tiers: bool = False,
    ) -> None:
        super().__init__(api_key=api_key, webhook_secret=webhook_secret, host=host, port=port)
        self.clock: Callable[[], float] = time.time
        self.enforce_tiers = enforce_tiers
        """Answer 429 past each endpoint's tier, as Klaviyo does; off by default."""
        self.events: list[dict[str, Any]] = []
        """Every recorded event, in the order received (repeats of a ``unique_id`` are not recorded)."""
        self.duplicates: list[dict[str, Any]] = []
        """Events accepted but not recorded because their dedupe key was seen before."""
        self.profiles: dict[str, dict[str, Any]] = {}
        """Profiles by id: identifiers, attributes and ``properties``, as created by events and imports."""
        self.metrics: dict[str, str] = {}
        """Metric id by name."""
        self.bulk_jobs: list[dict[str, Any]] = []
        """Each accepted bulk-create job: ``id``, ``events`` (count) and ``profiles`` (groups)."""
        self._seq = 0
        self._keys: list[tuple[int, int]] = []  # (timestamp, seq) of every event, ascending
        self._ordered: list[dict[str, Any]] = []  # the events in that order
        self._dedupe: set[tuple[str, str, str]] = set()
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}

    # -- recording events -------------------------------------------------------------------------

    def add_event(
        self,
        metric: str = "Placed Order",
        *,
        profile: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        time: datetime | str | None = None,
        unique_id: str | None = None,
        value: float | None = None,
    ) -> dict[str, Any] | None:
        """Record an event as if a client had created it; ``None`` when its dedupe key was seen before."""
        attributes: dict[str, Any] = {"properties": dict(properties or {}), "unique_id": unique_id, "value": value}
        if time is not None:
            attributes["time"] = time.isoformat() if isinstance(time, datetime) else time
        with self.lock:
            return self._record(attributes, metric, dict(profile or {"email": "ada@example.com"}), None, "seed")

    def add_events(
        self,
        count: int,
        metric: str | Sequence[str] = "Placed Order",
        *,
        start: datetime | None = None,
        step: timedelta = timedelta(seconds=1),
    ) -> list[dict[str, Any]]:
        """Record ``count`` events from ``start`` (default: so that the last is a second ago) every ``step``."""
        names = [metric] if isinstance(metric, str) else list(metric)
        first = start or datetime.fromtimestamp(self.clock(), UTC) - step * count
        made = []
        for i in range(count):
            found = self.add_event(
                names[i % len(names)],
                profile={"email": f"person{i % 7}@example.com"},
                properties={"n": i},
                time=first + step * i,
                unique_id=f"seed-{uuid.uuid4().hex}",
            )
            if found is not None:
                made.append(found)
        return made

    def event_resource(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A recorded event as ``GET /api/events`` serves it (a JSON:API resource)."""
        base = self.url
        rel = {
            name: {
                "data": {"type": name, "id": event[f"{name}_id"]},
                "links": {
                    "self": f"{base}/api/events/{event['id']}/relationships/{name}/",
                    "related": f"{base}/api/events/{event['id']}/{name}/",
                },
            }
            for name in ("metric", "profile")
        }
        return {
            "type": "event",
            "id": event["id"],
            "attributes": {
                "timestamp": event["timestamp"],
                "event_properties": dict(event["event_properties"]),
                "datetime": event["datetime"],
                "uuid": event["uuid"],
            },
            "relationships": rel,
            "links": {"self": f"{base}/api/events/{event['id']}/"},
        }

    # -- webhooks ---------------------------------------------------------------------------------

    def sign(
        self, body: bytes, timestamp: str | datetime | int | None = None, *, secret: str | None = None
    ) -> dict[str, str]:
        """The headers of a system webhook carrying ``body``: ``Klaviyo-Timestamp`` (an IMF-fixdate, or
        unix seconds when ``timestamp`` is an int) and ``Klaviyo-Signature``, hex HMAC-SHA256 of body + timestamp."""
        if timestamp is None:
            timestamp = datetime.fromtimestamp(self.clock(), UTC)
        text = (
            format_datetime(timestamp.astimezone(UTC), usegmt=True)
            if isinstance(timestamp, datetime)
            else str(timestamp)
        )
        key = (secret or self.webhook_secret).encode()
        return {
            "Content-Type": "application/json",
            "Klaviyo-Webhook-Id": self.webhook_id,
            "Klaviyo-Timestamp": text,
            "Klaviyo-Signature": hmac.new(key, body + text.encode(), hashlib.sha256).hexdigest(),
        }

    def webhook_item(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A recorded event as one item of a system webhook: ``topic``, ``external_id``, ``payload``."""
        slug = re.sub(r"[^a-z0-9]+", "_", str(event["metric"]).lower()).strip("_")
        profile = self.profiles.get(event["profile_id"], {})
        included = [{"type": "profile", "id": event["profile_id"], "attributes": _public_profile(profile)}]
        return {
            "topic": f"event:klaviyo.{slug}",
            "external_id": event["id"],
            "payload": {"data": self.event_resource(event), "included": included},
        }

    def webhook_body(self, items: Sequence[Mapping[str, Any]]) -> bytes:
        """A system-webhook batch: ``{"data": items, "meta": {account, webhook id, timestamp}}``."""
        meta = {
            "klaviyo_account_id": ACCOUNT_ID,
            "klaviyo_webhook_id": self.webhook_id,
            "timestamp": _iso(datetime.fromtimestamp(self.clock(), UTC)),
        }
        return json.dumps({"data": list(items), "meta": meta}).encode()

    def send_webhook(
        self,
        url: str,
        items: Sequence[Mapping[str, Any]],
        *,
        timestamp: str | datetime | int | None = None,
        secret: str | None = None,
        timeout: float = 10.0,
    ) -> httpx.Response:
        """POST a signed batch of ``items`` (recorded events are turned into webhook items) to ``url``."""
        batch = [self.webhook_item(i) if "metric" in i and "profile_id" in i else dict(i) for i in items]
        body = self.webhook_body(batch)
        return httpx.post(url, content=body, headers=self.sign(body, timestamp, secret=secret), timeout=timeout)

    # -- what the conformance suite asks ----------------------------------------------------------

    def control(self, request: Request) -> Response | None:
        """``GET /_emulator/events``: the events Klaviyo recorded (metric, profile, unique_id, properties)."""
        if request.method == "GET" and request.path == "/_emulator/events":
            with self.lock:
                return Response(200, {"events": list(self.events)})
        return super().control(request)

    def integration_settings(self) -> dict[str, Any]:
        return {"baseUrl": self.url, "apiKey": self.api_key, "webhookSecret": self.webhook_secret}

    def webhook_headers(self, body: bytes, *, secret: str | None = None, sent_at: int | None = None) -> dict[str, str]:
        moment = datetime.fromtimestamp(self.clock() if sent_at is None else sent_at, UTC)
        return self.sign(body, moment, secret=secret)

    def sample_webhook(self) -> bytes:
        event = self.add_event("Opened Email", profile={"email": "ada@example.com"}, properties={"subject": "Hi"})
        assert event is not None
        return self.webhook_body([self.webhook_item(event)])

    def seed_records(self, count: int) -> None:
        self.add_events(count, ("Placed Order", "Opened Email", "Clicked Email"))

    def sample_event(self) -> dict[str, Any] | None:
        data = {"id": "order-42", "email": "ada@example.com", "total": 19.99, "currency": "USD"}
        return {"id": "evt_sample", "type": "order.created", "occurred_at": "2026-01-01T00:00:00Z", "data": data}

    # -- the Emulator hooks -----------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "Klaviyo-API-Key" or not key:
            return jsonapi_error(
                401,
                "not_authenticated",
                "Authentication credentials were not provided.",
                "Missing or invalid authorization scheme. Please use Klaviyo-API-Key.",
            )
        if not hmac.compare_digest(key.strip().encode(), self.api_key.encode()):
            return jsonapi_error(
                401, "authentication_failed", "Incorrect authentication credentials.", "Incorrect API key."
            )
        return None

    def rate_limited(self, retry_after: int) -> Response:
        """Klaviyo's 429: ``Retry-After`` and a ``throttled`` error, no ``RateLimit-*`` headers."""
        wait = max(int(retry_after), 1)
        answer = jsonapi_error(
            429, "throttled", "Request was throttled.", f"Request was throttled. Expected available in {wait} second."
        )
        answer.headers["Retry-After"] = str(wait)
        return answer

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        when: Callable[[Request], bool] | None = None,
    ) -> None:
        """As the base class, with a JSON:API error body for the status (429: Klaviyo's ``throttled``)."""
        if body is None and status == 429:
            wait = (headers or {}).get("Retry-After", "1")
            body = self.rate_limited(int(wait) if str(wait).isdigit() else 1).body
            headers = {"Retry-After": str(wait), **dict(headers or {})}
        elif body is None:
            code = "error" if status >= 500 else "invalid"
            body = jsonapi_error(status, code, "Injected error.", f"Injected HTTP {status} (emulator fault).").body
        super().fail_next(count, status, body, headers, when=when)

    def route(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        found = _ROUTES.get((request.method, path))
        if found is None:
            if any(p == path for _, p in _ROUTES):
                return jsonapi_error(405, "method_not_allowed", "Method not allowed.", f"{request.method} {path}")
            return jsonapi_error(404, "not_found", "Not found.", f"No route for {request.method} {path}.")
        revision = request.headers.get("revision")
        if not revision:
            return _invalid("A revision header is required (e.g. revision: 2026-07-15).", parameter="revision")
        if not _REVISION.match(revision.strip()):
            return _invalid(f"Invalid revision header {revision!r}: use YYYY-MM-DD.", parameter="revision")
        handler, tier = found
        limits = self._count(path, tier)
        if isinstance(limits, Response):
            return limits
        if request.method == "POST":
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type not in (MEDIA_TYPE, "application/json"):
                refused = jsonapi_error(415, "unsupported_media_type", "Unsupported media type.", content_type or "?")
                refused.headers.update(limits)
                return refused
        answer: Response = getattr(self, handler)(request)
        answer.headers.update(limits)
        return answer

    # -- rate limits ------------------------------------------------------------------------------

    def _count(self, path: str, tier: str) -> dict[str, str] | Response:
        """Count the request in its endpoint's windows: the ``RateLimit-*`` headers, or a 429."""
        burst, steady = TIERS[tier]
        now = self.clock()
        second, minute = int(now), int(now // 60)
        with self.lock:
            b_start, b_count = self._windows.get((path, "burst"), (second, 0))
            s_start, s_count = self._windows.get((path, "steady"), (minute, 0))
            b_count = b_count if b_start == second else 0
            s_count = s_count if s_start == minute else 0
            if self.enforce_tiers and s_count >= steady:
                return self.rate_limited(math.ceil((minute + 1) * 60 - now))
            if self.enforce_tiers and b_count >= burst:
                return self.rate_limited(math.ceil(second + 1 - now))
            self._windows[(path, "burst")] = (second, b_count + 1)
            self._windows[(path, "steady")] = (minute, s_count + 1)
        return {
            "RateLimit-Limit": str(steady),
            "RateLimit-Remaining": str(max(steady - s_count - 1, 0)),
            "RateLimit-Reset": str(max(math.ceil((minute + 1) * 60 - now), 1)),
        }

    # -- routes -----------------------------------------------------------------------------------

    def _get_accounts(self, request: Request) -> Response:
        account = {
            "type": "account",
            "id": ACCOUNT_ID,
            "attributes": {
                "test_account": False,
                "contact_information": {
                    "default_sender_name": "Interlink Emulator",
                    "default_sender_email": "sender@example.com",
                    "website_url": "https://example.com",
                    "organization_name": "Interlink Emulator Co.",
                    "street_address": {
                        "address1": "1 Main St",
                        "address2": None,
                        "city": "Boston",
                        "region": "MA",
                        "country": "US",
                        "zip": "02110",
                    },
                },
                "industry": "Software / SaaS",
                "timezone": "UTC",
                "preferred_currency": "USD",
                "public_api_key": "EmuPub",
                "locale": "en-US",
            },
            "links": {"self": f"{self.url}/api/accounts/{ACCOUNT_ID}/"},
        }
        links = {"self": f"{self.url}/api/accounts/", "next": None, "prev": None}
        return Response(200, {"data": [account], "links": links}, content_type=MEDIA_TYPE)

    def _get_events(self, request: Request) -> Response:
        size_text = request.arg("page[size]", "200") or ""
        if not size_text.isdigit() or not 1 <= int(size_text) <= 1000:
            return _invalid(f"page[size] must be an integer from 1 to 1000, not {size_text!r}.", parameter="page[size]")
        sort = request.arg("sort", "datetime") or ""
        if sort.lstrip("-") not in ("datetime", "timestamp"):
            return _invalid(f"'{sort}' is not a valid sort field for events.", parameter="sort")
        include = [i for i in (request.arg("include") or "").split(",") if i]
        if any(i not in ("metric", "profile", "attributions") for i in include):
            return _invalid(f"Invalid include {','.join(include)!r}.", parameter="include")
        conditions = _parse_filter(request.arg("filter") or "")
        if isinstance(conditions, Response):
            return conditions
        descending = sort.startswith("-")
        after = _decode_cursor(request.arg("page[cursor]"), descending)
        if isinstance(after, Response):
            return after
        size = int(size_text)
        with self.lock:
            page = list(islice(self._walk(after, descending, conditions), size + 1))
            more = len(page) > size
            page = page[:size]
            # Encoded one resource at a time, so a page costs about its JSON size, not its dicts.
            fields = request.arg("fields[event]")
            resources = [_compact(_sparse(self.event_resource(e), fields)) for e in page]
            included = [_compact(item) for item in self._included(page, include, request)]
        params = {k: v[0] for k, v in request.query.items() if k != "page[cursor]" and v}
        links: dict[str, Any] = {"self": f"{self.url}/api/events/?{urlencode(request_query(request))}", "prev": None}
        links["next"] = None
        if more:
            cursor = _encode_cursor((page[-1]["timestamp"], page[-1]["seq"]), descending)
            links["next"] = f"{self.url}/api/events/?{urlencode({**params, 'page[cursor]': cursor})}"
        body = b'{"data":[' + b",".join(resources) + b'],"links":' + _compact(links)
        if include:
            body += b',"included":[' + b",".join(included) + b"]"
        return Response(200, body + b"}", content_type=MEDIA_TYPE)

    def _walk(
        self, after: tuple[int, int] | None, descending: bool, conditions: list[Callable[[dict[str, Any]], bool]]
    ) -> Iterator[dict[str, Any]]:
        """The events past the cursor position ``after`` in sort order that meet every condition, lazily."""
        keys = self._keys
        if descending:
            start = len(keys) if after is None else bisect.bisect_left(keys, after)
            positions: Iterable[int] = range(start - 1, -1, -1)
        else:
            start = 0 if after is None else bisect.bisect_left(keys, (after[0], after[1] + 1))
            positions = range(start, len(keys))
        for position in positions:
            event = self._ordered[position]
            if all(c(event) for c in conditions):
                yield event

    def _included(self, page: list[dict[str, Any]], include: list[str], request: Request) -> list[dict[str, Any]]:
        included: dict[tuple[str, str], dict[str, Any]] = {}
        for event in page:
            if "metric" in include:
                metric = {
                    "type": "metric",
                    "id": event["metric_id"],
                    "attributes": {
                        "name": event["metric"],
                        "created": "2026-01-01T00:00:00+00:00",
                        "updated": "2026-01-01T00:00:00+00:00",
                        "integration": {"object": "integration", "id": "0eMvjm", "name": "API", "category": "API"},
                    },
                    "links": {"self": f"{self.url}/api/metrics/{event['metric_id']}/"},
                }
                included[("metric", event["metric_id"])] = _sparse(metric, request.arg("fields[metric]"))
            if "profile" in include:
                profile = {
                    "type": "profile",
                    "id": event["profile_id"],
                    "attributes": _public_profile(self.profiles.get(event["profile_id"], {})),
                    "links": {"self": f"{self.url}/api/profiles/{event['profile_id']}/"},
                }
                included[("profile", event["profile_id"])] = _sparse(profile, request.arg("fields[profile]"))
        return list(included.values())

    def _create_event(self, request: Request) -> Response:
        body = _document(request, "event")
        if isinstance(body, Response):
            return body
        attributes = body["data"].get("attributes")
        checked = _check_event(attributes, "/data/attributes", single=True)
        if isinstance(checked, Response):
            return checked
        metric, profile = checked
        with self.lock:
            failed = self._profile_for(profile, "/data/attributes/profile/data")
            if isinstance(failed, Response):
                return failed
            self._record(attributes, metric, profile, failed, "event")
        return Response(202, None, content_type=MEDIA_TYPE)

    def _bulk_create(self, request: Request) -> Response:
        if len(request.body) > MAX_BODY:
            return jsonapi_error(413, "payload_too_large", "Payload too large.", "The payload exceeds 5 MB.")
        body = _document(request, "event-bulk-create-job")
        if isinstance(body, Response):
            return body
        where = "/data/attributes/events-bulk-create/data"
        groups = _path(body, "data", "attributes", "events-bulk-create", "data")
        if not isinstance(groups, list) or not groups:
            return _invalid("events-bulk-create must hold a non-empty list.", pointer=where)
        checked: list[tuple[dict[str, Any], list[tuple[dict[str, Any], str]]]] = []
        total = 0
        for g, group in enumerate(groups):
            at = f"{where}/{g}"
            if not isinstance(group, Mapping) or group.get("type") != "event-bulk-create":
                return _invalid("Each entry must be of type event-bulk-create.", pointer=f"{at}/type")
            profile = _check_profile(_path(group, "attributes", "profile"), f"{at}/attributes/profile")
            if isinstance(profile, Response):
                return profile
            events = _path(group, "attributes", "events", "data")
            if not isinstance(events, list) or not events:
                return _invalid("events must hold a non-empty list.", pointer=f"{at}/attributes/events/data")
            entries = []
            for e, event in enumerate(events):
                pointer = f"{at}/attributes/events/data/{e}"
                if not isinstance(event, Mapping) or event.get("type") != "event":
                    return _invalid("Each event must be of type event.", pointer=f"{pointer}/type")
                ok = _check_event(event.get("attributes"), f"{pointer}/attributes", single=False)
                if isinstance(ok, Response):
                    return ok
                entries.append((event["attributes"], ok[0]))
            total += len(entries)
            checked.append((profile, entries))
        if total > 1000:
            return _invalid(f"A job accepts at most 1000 events, not {total}.", pointer=where)
        with self.lock:
            for g, (profile, entries) in enumerate(checked):
                found = self._profile_for(profile, f"{where}/{g}/attributes/profile/data")
                if isinstance(found, Response):
                    return found
                for attributes, metric in entries:
                    self._record(attributes, metric, profile, found, "bulk")
            self.bulk_jobs.append({"id": _ulid(), "events": total, "profiles": len(checked)})
        return Response(202, None, content_type=MEDIA_TYPE)

    def _import_profile(self, request: Request) -> Response:
        body = _document(request, "profile")
        if isinstance(body, Response):
            return body
        profile = _check_profile({"data": body["data"]}, "", upsert=True)
        if isinstance(profile, Response):
            return profile
        with self.lock:
            existing = self._find_profile(profile)
            if existing is None and profile.get("id"):
                return jsonapi_error(404, "not_found", "Not found.", "No profile with this id.", pointer="/data/id")
            created = existing is None
            found = self._upsert(profile, existing)
            stored = dict(self.profiles[found])
        resource = {
            "type": "profile",
            "id": found,
            "attributes": {**_public_profile(stored), "created": stored["created"], "updated": stored["updated"]},
            "links": {"self": f"{self.url}/api/profiles/{found}/"},
        }
        return Response(201 if created else 200, {"data": resource}, content_type=MEDIA_TYPE)

    # -- the store (call with the lock held) ------------------------------------------------------

    def _find_profile(self, profile: Mapping[str, Any]) -> str | None:
        if profile.get("id"):
            return str(profile["id"]) if profile["id"] in self.profiles else None
        attributes = profile.get("attributes", {})
        for key in _PROFILE_IDS:
            if attributes.get(key):
                for pid, stored in self.profiles.items():
                    if stored.get(key) == attributes[key]:
                        return pid
        return None

    def _upsert(self, profile: Mapping[str, Any], existing: str | None) -> str:
        now = _iso(datetime.fromtimestamp(self.clock(), UTC))
        pid = existing or _ulid()
        stored = self.profiles.setdefault(pid, {"id": pid, "created": now, "properties": {}})
        for key, value in profile.get("attributes", {}).items():
            if key == "properties" and isinstance(value, Mapping):
                stored["properties"].update(value)
            else:  # a null clears the field, as Klaviyo documents for profile-import
                stored[key] = value
        stored["updated"] = now
        return pid

    def _profile_for(self, profile: Mapping[str, Any], pointer: str) -> str | Response:
        existing = self._find_profile(profile)
        if existing is None and profile.get("id"):
            return _invalid("No profile with this id.", pointer=f"{pointer}/id")
        return self._upsert(profile, existing)

    def _record(
        self, attributes: Mapping[str, Any], metric: str, profile: dict[str, Any], profile_id: str | None, via: str
    ) -> dict[str, Any] | None:
        if "attributes" not in profile:
            profile = {"type": "profile", "attributes": profile}
        pid = profile_id or self._upsert(profile, self._find_profile(profile))
        moment = _parse_time(attributes.get("time")) or datetime.fromtimestamp(self.clock(), UTC)
        moment = moment.replace(microsecond=0)
        unique_id = attributes.get("unique_id")
        key = (pid, metric, str(unique_id) if unique_id else moment.isoformat())
        self._seq += 1
        metric_id = self.metrics.setdefault(metric, "".join(secrets.choice(_ULID[:32]) for _ in range(6)))
        properties = dict(attributes.get("properties") or {})
        event = {
            "id": f"{int(moment.timestamp()):x}{self._seq:06x}{secrets.token_hex(2)}",
            "seq": self._seq,
            "metric": metric,
            "metric_id": metric_id,
            "profile_id": pid,
            "profile": dict(profile.get("attributes", {})),
            "unique_id": unique_id,
            "properties": properties,
            "event_properties": {**properties, "$event_id": unique_id or key[2]}
            | ({"$value": attributes["value"]} if attributes.get("value") is not None else {}),
            "time": attributes.get("time"),
            "datetime": _iso(moment),
            "timestamp": int(moment.timestamp()),
            "value": attributes.get("value"),
            "value_currency": attributes.get("value_currency"),
            "backfill": bool(attributes.get("backfill", False)),
            "uuid": str(uuid.uuid1()),
            "via": via,
        }
        if key in self._dedupe:
            self.duplicates.append(event)
            return None
        self._dedupe.add(key)
        self.events.append(event)
        order = (int(moment.timestamp()), self._seq)
        position = bisect.bisect_right(self._keys, order)
        self._keys.insert(position, order)
        self._ordered.insert(position, event)
        return dict(event)


# -- validation -----------------------------------------------------------------------------------


def _document(request: Request, kind: str) -> dict[str, Any] | Response:
    """The request's JSON:API document whose ``data.type`` is ``kind``, or the 400 Klaviyo answers."""
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError):
        return jsonapi_error(400, "parse_error", "Malformed JSON.", "The request body is not valid JSON.")
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        return _invalid("The body must be a JSON:API document with a data object.", pointer="/data")
    if body["data"].get("type") != kind:
        return _invalid(f"data.type must be '{kind}'.", pointer="/data/type")
    if not isinstance(body["data"].get("attributes"), dict):
        return _invalid("data.attributes is required.", pointer="/data/attributes")
    return body


def _check_event(attributes: Any, at: str, *, single: bool) -> tuple[str, dict[str, Any]] | Response:
    """``(metric name, profile)`` of valid event attributes (``single``: Create Event, which names its profile)."""
    if not isinstance(attributes, Mapping):
        return _invalid("attributes are required.", pointer=at)
    allowed = _EVENT_ATTRIBUTES | ({"profile"} if single else set())
    for key in attributes:
        if key not in allowed:
            return _invalid(f"'{key}' is not a valid field for the resource 'event'.", pointer=f"{at}/{key}")
    properties = attributes.get("properties")
    if not isinstance(properties, Mapping):
        return _invalid("properties is required and must be an object.", pointer=f"{at}/properties")
    if len(properties) > 400:
        return _invalid("An event may have at most 400 properties.", pointer=f"{at}/properties")
    name = _path(attributes, "metric", "data", "attributes", "name")
    if _path(attributes, "metric", "data", "type") != "metric" or not isinstance(name, str) or not name.strip():
        return _invalid("A metric with a name is required.", pointer=f"{at}/metric")
    if len(name) > 127:
        return _invalid("The metric name must be under 128 characters.", pointer=f"{at}/metric")
    if attributes.get("time") is not None and _parse_time(attributes["time"]) is None:
        return _invalid("time must be an ISO 8601 datetime.", pointer=f"{at}/time")
    value = attributes.get("value")
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        return _invalid("value must be a number.", pointer=f"{at}/value")
    for key in ("unique_id", "value_currency"):
        if attributes.get(key) is not None and not isinstance(attributes[key], str):
            return _invalid(f"{key} must be a string.", pointer=f"{at}/{key}")
    if attributes.get("backfill") is not None and not isinstance(attributes["backfill"], bool):
        return _invalid("backfill must be a boolean.", pointer=f"{at}/backfill")
    profile: dict[str, Any] = {}
    if single:
        found = _check_profile(attributes.get("profile"), f"{at}/profile")
        if isinstance(found, Response):
            return found
        profile = found
    return name, profile


def _check_profile(value: Any, at: str, *, upsert: bool = False) -> dict[str, Any] | Response:
    """A profile reference ``{"data": {"type": "profile", "id"?, "attributes": {...}}}`` naming an identifier."""
    data = value.get("data") if isinstance(value, Mapping) else None
    if not isinstance(data, Mapping) or data.get("type") != "profile":
        return _invalid("A profile of type 'profile' is required.", pointer=f"{at}/data")
    attributes = data.get("attributes", {})
    if not isinstance(attributes, Mapping):
        return _invalid("Profile attributes must be an object.", pointer=f"{at}/data/attributes")
    for key, item in attributes.items():
        if key not in _PROFILE_ATTRIBUTES:
            return _invalid(
                f"'{key}' is not a valid field for the resource 'profile'.", pointer=f"{at}/data/attributes/{key}"
            )
        if key in ("properties", "location") and not isinstance(item, Mapping | None):
            return _invalid(f"{key} must be an object.", pointer=f"{at}/data/attributes/{key}")
        if key not in ("properties", "location") and not isinstance(item, str | None):
            return _invalid(f"{key} must be a string.", pointer=f"{at}/data/attributes/{key}")
    email = attributes.get("email")
    if isinstance(email, str) and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        return _invalid(f"Invalid email address {email!r}.", pointer=f"{at}/data/attributes/email")
    if data.get("id") is not None and not isinstance(data["id"], str):
        return _invalid("id must be a string.", pointer=f"{at}/data/id")
    if not data.get("id") and not any(attributes.get(k) for k in _PROFILE_IDS):
        return _invalid(
            "A profile identifier is required: one of id, email, phone_number, external_id or anonymous_id.",
            pointer=f"{at}/data/attributes",
        )
    return {"type": "profile", "id": data.get("id"), "attributes": dict(attributes)}


def _parse_filter(text: str) -> list[Callable[[dict[str, Any]], bool]] | Response:
    """Klaviyo's filter expression as predicates on recorded events; a 400 for what events do not support."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("and(") and text.endswith(")"):
        text = text[4:-1]
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    predicates: list[Callable[[dict[str, Any]], bool]] = []
    for part in parts:
        match = _CONDITION.match(part.strip())
        if match is None:
            return _invalid(f"Invalid filter expression {part.strip()!r}.", parameter="filter")
        op, field, raw = match.groups()
        value = raw.strip().strip("'\"")
        if field in ("datetime", "timestamp") and op in _COMPARE:
            moment = _parse_time(value) if field == "datetime" else _unix(value)
            if moment is None:
                return _invalid(f"Invalid {field} value {value!r} in filter.", parameter="filter")
            bound, compare = int(moment.timestamp()), _COMPARE[op]
            predicates.append(partial(_compare, compare, bound))
        elif field in ("metric_id", "profile_id") and op == "equals":
            predicates.append(partial(_equals, field, value))
        else:
            return _invalid(f"'{op}' is not a valid operator for the field '{field}'.", parameter="filter")
    return predicates


def _compare(compare: Callable[[int, int], bool], bound: int, event: Mapping[str, Any]) -> bool:
    return compare(int(event["timestamp"]), bound)


def _equals(field: str, value: str, event: Mapping[str, Any]) -> bool:
    return bool(event[field] == value)


def _encode_cursor(position: tuple[int, int], descending: bool) -> str:
    raw = json.dumps([*position, int(descending)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None, descending: bool) -> tuple[int, int] | Response | None:
    cursor = (cursor or "").lstrip("=")  # the official SDK cuts links.next after "page%5Bcursor%5D", keeping "="
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        timestamp, seq, direction = json.loads(raw)
        if bool(direction) != descending:
            raise ValueError("cursor of another sort")
        return int(timestamp), int(seq)
    except (ValueError, TypeError, binascii.Error):
        return _invalid("Invalid page cursor.", parameter="page[cursor]")


# -- small helpers --------------------------------------------------------------------------------


def request_query(request: Request) -> dict[str, str]:
    """The request's query, one value per name."""
    return {k: v[0] for k, v in request.query.items() if v}


def _path(value: Any, *keys: str) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _sparse(resource: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """``resource`` with only the attributes named in a ``fields[...]`` parameter, when one is given."""
    if not fields:
        return resource
    wanted = {f.strip() for f in fields.split(",")}
    return {**resource, "attributes": {k: v for k, v in resource["attributes"].items() if k in wanted}}


def _public_profile(stored: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("email", "phone_number", "external_id", "first_name", "last_name", "organization", "locale", "title")
    return {k: stored.get(k) for k in keys} | {"properties": dict(stored.get("properties") or {})}


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _unix(value: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _iso(moment: datetime) -> str:
    """``2026-01-02T03:04:05+00:00``: the form Klaviyo answers with."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _ulid() -> str:
    """A Klaviyo-style id: 26 characters of Crockford base32."""
    return "01" + "".join(secrets.choice(_ULID) for _ in range(24))
