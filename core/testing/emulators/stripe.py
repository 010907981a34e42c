"""A local Stripe API that follows the documented contract (``vendors.md`` section 1), for tests and demos.

What it serves, as Stripe does: ``Authorization: Bearer <key>`` (or HTTP Basic with the key as user
name), a ``Request-Id`` on every answer, errors as ``{"error": {type, code, message, param}}``, the
Events API (``GET /v1/events``, newest first, ``created[...]`` and type filters, cursor pagination, only
the last 30 days), ``GET /v1/balance`` and ``GET /v1/account`` (cheap credential checks), and Customers
(form-encoded ``POST /v1/customers[/{id}]`` with ``Idempotency-Key`` replay, ``GET /v1/customers/{id}``,
``GET /v1/customers/search``). Creating or updating a customer records its ``customer.*`` event.

Events are kept compactly so a benchmark can hold 100,000 of them: one sorted ``array`` of 64-bit keys
(``created << 24 | seq``); events from :meth:`StripeEmulator.add_events` are rebuilt from their index
when a page is served, and only :meth:`StripeEmulator.add_event` keeps a dict per event.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
import re
import time
import uuid
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from interlink.testing.emulators.base import Emulator, Request, Response

__all__ = ["API_VERSION", "StripeEmulator"]

API_VERSION = "2026-06-24.dahlia"
"""The ``Stripe-Version`` answered when the request pins none (the version stripe-python pins)."""
WINDOW_SECONDS = 30 * 24 * 3600
"""``GET /v1/events`` only lists events of the last 30 days."""
_SEQ_BITS = 24
_SEQ_MASK = (1 << _SEQ_BITS) - 1
_EVENT_PREFIX = "evt_1Emu"
_LIST_PARAMS = frozenset(
    {"created", "type", "types", "starting_after", "ending_before", "limit", "delivery_success", "expand"}
)
_CUSTOMER_PARAMS = frozenset(
    {"address", "description", "email", "metadata", "name", "phone", "preferred_locales", "shipping", "expand"}
)
_CLAUSE = re.compile(
    r"""\s*(metadata\[(['"])(?P<key>[^'"]+)\2\]|(?P<field>email|name|phone))\s*:\s*(['"])(?P<value>.*?)\5\s*"""
)


@dataclass(frozen=True)
class _Batch:
    """Events made by :meth:`StripeEmulator.add_events`: event ``i`` is rebuilt from these numbers."""

    first_seq: int
    count: int
    start: int
    spacing: float
    types: tuple[str, ...]

    def created(self, seq: int) -> int:
        return self.start + int((seq - self.first_seq) * self.spacing)

    def type(self, seq: int) -> str:
        return self.types[(seq - self.first_seq) % len(self.types)]


def stripe_error(status: int, message: str, *, type: str = "invalid_request_error", **extra: Any) -> Response:
    """Stripe's error answer: ``{"error": {"type", "message", ...}}`` (``code``, ``param`` when given)."""
    return Response(status, {"error": {"type": type, "message": message, **extra}})


class StripeEmulator(Emulator):
    """A Stripe API on 127.0.0.1; see the module docstring. ``clock`` (unix seconds) may be replaced by tests."""

    service: ClassVar[str] = "stripe"
    default_api_key: ClassVar[str] = "sk_test_emulator_51EmuKey0123456789"
    default_webhook_secret: ClassVar[str] = "whsec_emulator0123456789abcdefABCDEF"  # noqa: S105

    def __init__(
        self,
        *,
        api_key: str | None = None,
        webhook_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, webhook_secret=webhook_secret, host=host, port=port)
        self.clock: Callable[[], float] = time.time
        self.customers: dict[str, dict[str, Any]] = {}
        """Customers by id, as created and updated through the API."""
        self._keys = array("q")  # (created << 24 | seq) of every listed event, ascending
        self._events: dict[int, dict[str, Any]] = {}  # seq -> event, for add_event only
        self._batches: list[_Batch] = []
        self._batch_starts: list[int] = []
        self._next_seq = 1

    # -- adding events ----------------------------------------------------------------------------

    def event(self, type: str, obj: Mapping[str, Any], created: int | None = None) -> dict[str, Any]:
        """A new Stripe Event dict (with a fresh id) that is *not* listed: e.g. to send as a webhook only."""
        with self.lock:
            seq = self._next_seq
            self._next_seq += 1
        return _event(seq, type, dict(obj), int(self.clock()) if created is None else created)

    def add_event(self, type: str, obj: Mapping[str, Any], created: int | None = None) -> dict[str, Any]:
        """Record an Event of ``type`` about ``obj`` (``created`` defaults to now) and return it."""
        event = self.event(type, obj, created)
        self._store(event)
        return _copy(event)

    def add_events(
        self,
        count: int,
        types: str | Sequence[str] = "charge.succeeded",
        *,
        start: int | None = None,
        spacing: float = 1.0,
    ) -> None:
        """Record ``count`` events cheaply: ``created`` from ``start`` every ``spacing`` s, types in turn.

        ``start`` defaults so that the last one is a second ago. Each costs 8 bytes until it is served.
        """
        kinds = (types,) if isinstance(types, str) else tuple(types)
        if start is None:
            start = int(self.clock()) - 1 - int((count - 1) * spacing)
        with self.lock:
            batch = _Batch(self._next_seq, count, start, spacing, kinds)
            self._next_seq += count
            self._batches.append(batch)
            self._batch_starts.append(batch.first_seq)
            keys = array("q", (batch.created(s) << _SEQ_BITS | s for s in range(batch.first_seq, self._next_seq)))
            if self._keys and keys and keys[0] < self._keys[-1]:
                keys = array("q", sorted([*self._keys, *keys]))
            else:
                keys = self._keys + keys
            self._keys = keys

    def event_ids(self) -> Iterator[str]:
        """The ids of every listed event (also those older than 30 days), oldest first."""
        with self.lock:
            keys = array("q", self._keys)
        return (_event_id(k & _SEQ_MASK) for k in keys)

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        """A listed event by id, else ``None``."""
        seq = _seq_of(event_id)
        return None if seq is None else self._materialize(seq)

    # -- webhooks ---------------------------------------------------------------------------------

    def sign(self, body: bytes, timestamp: int | None = None, secret: str | None = None) -> str:
        """The ``Stripe-Signature`` value for ``body``: ``t=<unix>,v1=<HMAC-SHA256 hex of "t.body">``."""
        t = int(self.clock()) if timestamp is None else timestamp
        key = (secret or self.webhook_secret).encode()
        digest = hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={t},v1={digest}"

    def send_webhook(
        self,
        url: str,
        event: Mapping[str, Any] | str,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        timeout: float = 10.0,
    ) -> httpx.Response:
        """POST ``event`` (an Event dict, or the id of a listed one) to ``url``, signed as Stripe signs it."""
        found = self.get_event(event) if isinstance(event, str) else dict(event)
        if found is None:
            raise KeyError(f"no event {event!r}")
        body = json.dumps(found, indent=2).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": self.sign(body, timestamp, secret),
        }
        return httpx.post(url, content=body, headers=headers, timeout=timeout)

    # -- control paths, for a person trying a flow with ``interlink emulate stripe`` ---------------

    def control(self, request: Request) -> Response | None:
        """``GET /_emulator/customers``: the Customers made through the API. ``POST /_emulator/events`` with
        ``{"type", "object"}``: list a new Event (for a sync to pull); add ``"webhook_url"`` to also send it,
        signed, to that URL (e.g. Interlink's ``/v1/hooks/{integrationId}``): the answer carries its status."""
        if request.method == "GET" and request.path == "/_emulator/customers":
            with self.lock:
                return Response(200, {"customers": [_copy(c) for c in self.customers.values()]})
        if request.method == "POST" and request.path == "/_emulator/events":
            try:
                wanted = request.json()
            except ValueError:
                wanted = None
            if not isinstance(wanted, dict) or not isinstance(wanted.get("type"), str):
                return Response(400, {"error": 'send {"type": "invoice.paid", "object": {...}, "webhook_url"?: ...}'})
            obj = wanted.get("object")
            event = self.add_event(wanted["type"], obj if isinstance(obj, dict) else {})
            answer: dict[str, Any] = {"event": event}
            if isinstance(wanted.get("webhook_url"), str):
                try:
                    answer["webhook_status"] = self.send_webhook(wanted["webhook_url"], event).status_code
                except httpx.HTTPError as exc:
                    answer["webhook_error"] = f"{type(exc).__name__}: {exc}"
            return Response(200, answer)
        return super().control(request)

    # -- what the conformance suite asks ----------------------------------------------------------

    def integration_settings(self) -> dict[str, Any]:
        return {"baseUrl": self.url, "apiKey": self.api_key, "webhookSecret": self.webhook_secret}

    def webhook_headers(self, body: bytes, *, secret: str | None = None, sent_at: int | None = None) -> dict[str, str]:
        return {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": self.sign(body, sent_at, secret)}

    def sample_webhook(self) -> bytes:
        obj = _generated_object("invoice.paid", 1, int(self.clock()))
        return json.dumps(self.event("invoice.paid", obj), indent=2).encode()

    def seed_records(self, count: int) -> None:
        self.add_events(count, ("invoice.paid", "charge.succeeded", "customer.subscription.updated"))

    def sample_event(self) -> dict[str, Any] | None:
        data = {"id": "user-42", "email": "ada@example.com", "name": "Ada Lovelace", "metadata": {"plan": "pro"}}
        return {"id": "evt_sample", "type": "customer.created", "occurred_at": "2026-01-01T00:00:00Z", "data": data}

    # -- the Emulator hooks -----------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                credential = base64.b64decode(credential).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                credential = ""
        elif scheme.lower() != "bearer":
            credential = ""
        if credential and hmac.compare_digest(credential.encode(), self.api_key.encode()):
            return None
        if not credential:
            message = (
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
            )
        else:
            message = f"Invalid API Key provided: {_mask(credential)}"
        return self._stamped(stripe_error(401, message))

    def rate_limited(self, retry_after: int) -> Response:
        """Stripe's 429. Stripe is not known to send ``Retry-After``, so neither does this (inject one to test)."""
        return self._stamped(
            stripe_error(
                429,
                "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
                type="rate_limit_error",
                code="rate_limit",
            )
        )

    def key_reused(self, key: str) -> Response:
        message = (
            "Keys for idempotent requests can only be used with the same parameters they were first used with. "
            f"Try using a key other than '{key}' if you meant to execute a different request."
        )
        return self._stamped(stripe_error(400, message, type="idempotency_error"))

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        when: Callable[[Request], bool] | None = None,
    ) -> None:
        """As the base class, with Stripe's error bodies (429: ``rate_limit_error``) and a ``Request-Id`` each.

        ``headers`` are sent as given, so a test may add ``Retry-After`` or ``Stripe-Should-Retry``.
        """
        for _ in range(count):
            answer = body
            if answer is None and status == 429:
                answer = self.rate_limited(0).body
            elif answer is None:
                kind = "api_error" if status >= 500 else "invalid_request_error"
                answer = {"error": {"type": kind, "message": f"Injected HTTP {status} (emulator fault)."}}
            stamped = {"Request-Id": _request_id(), **dict(headers or {})}
            super().fail_next(1, status, answer, stamped, when=when)

    def route(self, request: Request) -> Response:
        return self._stamped(self._dispatch(request), request)

    # -- routes -----------------------------------------------------------------------------------

    def _dispatch(self, request: Request) -> Response:
        path, method = request.path.rstrip("/"), request.method
        if method == "GET" and path == "/v1/events":
            return self._list_events(request)
        if method == "GET" and path.startswith("/v1/events/"):
            found = self.get_event(path.rsplit("/", 1)[1])
            return Response(200, found) if found else _missing("event", path.rsplit("/", 1)[1])
        if method == "GET" and path == "/v1/balance":
            return Response(200, _BALANCE)
        if method == "GET" and path == "/v1/account":
            return Response(200, _ACCOUNT)
        if method == "GET" and path == "/v1/customers/search":
            return self._search_customers(request)
        if path == "/v1/customers" and method == "POST":
            return self._idempotent(request, lambda form: self._save_customer(None, form))
        if path.startswith("/v1/customers/") and path.count("/") == 3:
            customer_id = path.rsplit("/", 1)[1]
            if method == "GET":
                with self.lock:
                    customer = self.customers.get(customer_id)
                return Response(200, customer) if customer else _missing("customer", customer_id)
            if method == "POST":
                return self._idempotent(request, lambda form: self._save_customer(customer_id, form))
        message = (
            f"Unrecognized request URL ({method}: {request.path}). "
            "Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
        )
        return stripe_error(404, message)

    def _list_events(self, request: Request) -> Response:
        params = _unflatten(request.query)
        unknown = sorted(set(params) - _LIST_PARAMS)
        if unknown:
            return _unknown_param(unknown[0])
        limit_text = request.arg("limit", "10") or ""
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
            return stripe_error(
                400,
                f"Invalid limit: {limit_text!r}. The limit must be an integer between 1 and 100.",
                param="limit",
                code="parameter_invalid_integer",
            )
        limit = int(limit_text)
        now = int(self.clock())
        low, high = now - WINDOW_SECONDS, now + 10 * 365 * 86400
        created = params.get("created")
        bounds = created if isinstance(created, dict) else ({"gte": created, "lte": created} if created else {})
        for op, value in bounds.items():
            if op not in ("gt", "gte", "lt", "lte") or not str(value).lstrip("-").isdigit():
                return stripe_error(400, f"Invalid created[{op}]: must be a unix timestamp.", param=f"created[{op}]")
            moment = int(value)
            if op.startswith("g"):
                low = max(low, moment + (op == "gt"))
            else:
                high = min(high, moment - (op == "lt"))
        match = _type_filter(params)
        if isinstance(match, Response):
            return match
        after, before = request.arg("starting_after"), request.arg("ending_before")
        if after and before:
            return stripe_error(400, "You may only specify one of these parameters: ending_before, starting_after.")
        with self.lock:
            lo = bisect.bisect_left(self._keys, low << _SEQ_BITS)
            hi = bisect.bisect_left(self._keys, (high + 1) << _SEQ_BITS)
            cursor = after or before
            if cursor:
                key = self._key_of(cursor)
                if key is None:
                    param = "starting_after" if after else "ending_before"
                    return stripe_error(400, f"No such event: '{cursor}'", param=param, code="resource_missing")
                if after:
                    hi = min(hi, bisect.bisect_left(self._keys, key))
                else:
                    lo = max(lo, bisect.bisect_right(self._keys, key))
            positions = range(lo, hi) if before else range(hi - 1, lo - 1, -1)
            picked: list[int] = []
            for position in positions:
                seq = self._keys[position] & _SEQ_MASK
                if match is None or match(self._type_of(seq)):
                    picked.append(seq)
                    if len(picked) > limit:
                        break
            has_more = len(picked) > limit
            picked = picked[:limit]
            if before:
                picked.reverse()
            data = [self._materialize(seq) for seq in picked]
        return Response(200, {"object": "list", "data": data, "has_more": has_more, "url": "/v1/events"})

    def _idempotent(self, request: Request, compute: Callable[[dict[str, Any]], Response]) -> Response:
        pairs = sorted((k, v) for k, values in request.form().items() for v in values)
        fingerprint = f"{request.method} {request.path} {pairs}"
        key = request.headers.get("idempotency-key")
        if key is not None and len(key) > 255:
            return stripe_error(400, "Idempotency keys are at most 255 characters long.")
        return self.replay(key, fingerprint, lambda: compute(_unflatten(request.form())))

    def _save_customer(self, customer_id: str | None, form: dict[str, Any]) -> Response:
        unknown = sorted(set(form) - _CUSTOMER_PARAMS)
        if unknown:
            return _unknown_param(unknown[0])
        for name in ("metadata", "address", "shipping"):
            if name in form and not isinstance(form[name], dict | str):
                return stripe_error(400, f"Invalid object: {name}", param=name)
        with self.lock:
            if customer_id is None:
                customer = _new_customer(f"cus_Emu{uuid.uuid4().hex[:14]}", int(self.clock()))
                previous = None
            elif customer_id in self.customers:
                customer = self.customers[customer_id]
                previous = _copy(customer)
            else:
                return _missing("customer", customer_id)
            for name, value in form.items():
                if name == "expand":
                    continue
                if name == "metadata":
                    metadata = customer["metadata"] if isinstance(value, dict) else {}
                    for k, v in value.items() if isinstance(value, dict) else ():
                        if v == "":
                            metadata.pop(k, None)
                        else:
                            metadata[k] = v
                    customer["metadata"] = metadata
                else:
                    customer[name] = None if value == "" else value
            self.customers[customer["id"]] = customer
            snapshot = _copy(customer)
        if previous is None:
            self.add_event("customer.created", snapshot)
        else:
            changed = {k: previous[k] for k in snapshot if previous.get(k) != snapshot[k]}
            if changed:
                event = self.event("customer.updated", snapshot)
                event["data"]["previous_attributes"] = changed
                self._store(event)
        return Response(200, snapshot)

    def _search_customers(self, request: Request) -> Response:
        query = request.arg("query") or ""
        clauses = [c for c in re.split(r"\s+AND\s+", query.strip()) if c]
        wanted: list[tuple[str | None, str | None, str]] = []
        for clause in clauses:
            found = _CLAUSE.fullmatch(clause)
            if found is None:
                return stripe_error(400, f"Invalid search query: {query!r}.", param="query")
            wanted.append((found["key"], found["field"], found["value"]))
        if not wanted:
            return stripe_error(400, "Missing required param: query.", param="query")
        with self.lock:
            data = [
                _copy(c)
                for c in self.customers.values()
                if all((c["metadata"].get(key) if key else c.get(str(field))) == value for key, field, value in wanted)
            ]
        data.sort(key=lambda c: c["created"], reverse=True)
        body = {"object": "search_result", "data": data, "has_more": False, "next_page": None}
        return Response(200, {**body, "url": "/v1/customers/search"})

    # -- storage ----------------------------------------------------------------------------------

    def _store(self, event: dict[str, Any]) -> None:
        seq = _seq_of(event["id"])
        assert seq is not None
        with self.lock:
            self._events[seq] = event
            bisect.insort(self._keys, event["created"] << _SEQ_BITS | seq)

    def _key_of(self, event_id: str) -> int | None:
        seq = _seq_of(event_id)
        if seq is None:
            return None
        created = self._created_of(seq)
        return None if created is None else created << _SEQ_BITS | seq

    def _batch_of(self, seq: int) -> _Batch | None:
        index = bisect.bisect_right(self._batch_starts, seq) - 1
        if index >= 0 and seq < self._batches[index].first_seq + self._batches[index].count:
            return self._batches[index]
        return None

    def _created_of(self, seq: int) -> int | None:
        if seq in self._events:
            created: int = self._events[seq]["created"]
            return created
        batch = self._batch_of(seq)
        return None if batch is None else batch.created(seq)

    def _type_of(self, seq: int) -> str:
        if seq in self._events:
            kind: str = self._events[seq]["type"]
            return kind
        batch = self._batch_of(seq)
        assert batch is not None
        return batch.type(seq)

    def _materialize(self, seq: int) -> dict[str, Any] | None:
        with self.lock:
            if seq in self._events:
                return _copy(self._events[seq])
            batch = self._batch_of(seq)
        if batch is None:
            return None
        kind = batch.type(seq)
        return _event(seq, kind, _generated_object(kind, seq, batch.created(seq)), batch.created(seq))

    def _stamped(self, response: Response, request: Request | None = None) -> Response:
        """Every Stripe answer carries a ``Request-Id`` and the ``Stripe-Version`` it was rendered in."""
        version = (request.headers.get("stripe-version") if request else None) or API_VERSION
        response.headers = {"Request-Id": _request_id(), "Stripe-Version": version, **response.headers}
        return response


# -- helpers ------------------------------------------------------------------------------------------


def _copy(value: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object, so that what the emulator keeps and what it answers never alias."""
    copied: dict[str, Any] = json.loads(json.dumps(value))
    return copied


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex[:14]}"


def _event_id(seq: int) -> str:
    return f"{_EVENT_PREFIX}{seq:020d}"


def _seq_of(event_id: str) -> int | None:
    digits = event_id[len(_EVENT_PREFIX) :]
    if not event_id.startswith(_EVENT_PREFIX) or not digits.isdigit() or len(digits) != 20:
        return None
    return int(digits)


def _mask(key: str) -> str:
    """As Stripe echoes a rejected key: the prefix and the last four characters, the rest starred."""
    if len(key) <= 12:
        return "*" * len(key)
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


def _missing(kind: str, ident: str) -> Response:
    return stripe_error(404, f"No such {kind}: '{ident}'", code="resource_missing", param="id")


def _unknown_param(name: str) -> Response:
    return stripe_error(400, f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def _type_filter(params: dict[str, Any]) -> Callable[[str], bool] | Response | None:
    """The ``type`` (``*`` wildcard) or ``types[]`` (at most 20) filter of ``GET /v1/events``."""
    single, many = params.get("type"), params.get("types")
    if single is not None and many is not None:
        return stripe_error(400, "You may only specify one of these parameters: type, types.", param="types")
    if many is not None:
        names = list(many.values()) if isinstance(many, dict) else list(many) if isinstance(many, list) else [many]
        if len(names) > 20:
            return stripe_error(400, "You may pass at most 20 types.", param="types")
        chosen = frozenset(names)
        return chosen.__contains__
    if isinstance(single, str) and single:
        pattern = re.compile("^" + ".*".join(re.escape(p) for p in single.split("*")) + "$")
        return lambda kind: pattern.match(kind) is not None
    return None


def _unflatten(query: Mapping[str, list[str]]) -> dict[str, Any]:
    """Stripe's form encoding as a dict: ``metadata[a]=1`` -> ``{"metadata": {"a": "1"}}``; ``types[]``: a list."""
    result: dict[str, Any] = {}
    for raw, values in query.items():
        name, _, rest = raw.partition("[")
        if not rest:
            result[name] = values[-1]
            continue
        key = rest.split("]", 1)[0]
        if key == "" or key.isdigit():
            existing = result.get(name)
            result[name] = [*(existing if isinstance(existing, list) else []), *values]
        else:
            existing = result.get(name)
            result[name] = {**(existing if isinstance(existing, dict) else {}), key: values[-1]}
    return result


def _event(seq: int, type: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return {
        "id": _event_id(seq),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }


def _new_customer(customer_id: str, created: int) -> dict[str, Any]:
    return {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": None,
        "description": None,
        "email": None,
        "livemode": False,
        "metadata": {},
        "name": None,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
    }


_OBJECT_KINDS = (
    ("checkout.session.", "checkout.session", "cs_test_"),
    ("customer.subscription.", "subscription", "sub_"),
    ("invoice.", "invoice", "in_"),
    ("charge.dispute.", "dispute", "dp_"),
    ("charge.", "charge", "ch_"),
    ("payment_intent.", "payment_intent", "pi_"),
    ("customer.", "customer", "cus_"),
)


def _generated_object(kind: str, seq: int, created: int) -> dict[str, Any]:
    """A plausible object for a generated event: ids, amount, currency, status, customer from ``seq``."""
    name, prefix = next(((n, p) for t, n, p in _OBJECT_KINDS if kind.startswith(t)), ("charge", "ch_"))
    customer = f"cus_Emu{seq % 997:011d}"
    obj: dict[str, Any] = {
        "id": f"{prefix}Emu{seq:014d}",
        "object": name,
        "created": created,
        "livemode": False,
        "metadata": {"external_id": f"user-{seq % 997}"},
    }
    if name == "customer":
        return {**obj, "id": customer, "email": f"user{seq % 997}@example.com", "name": f"User {seq % 997}"}
    amount = 500 + seq % 10_000
    obj.update(customer=customer, currency="usd", status="succeeded" if "failed" not in kind else "failed")
    if name == "invoice":
        obj.update(amount_paid=amount, amount_due=amount, customer_email=f"user{seq % 997}@example.com")
        obj["status"] = "paid" if kind == "invoice.paid" else "open"
    elif name == "checkout.session":
        obj.update(amount_total=amount, client_reference_id=f"user-{seq % 997}", status="complete")
    elif name == "subscription":
        obj["status"] = "canceled" if kind.endswith("deleted") else "active"
    else:
        obj["amount"] = amount
    return obj


_BALANCE: dict[str, Any] = {
    "object": "balance",
    "available": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
    "livemode": False,
    "pending": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
}
_ACCOUNT: dict[str, Any] = {
    "id": "acct_1EmulatorAccount",
    "object": "account",
    "business_profile": {"name": "Emulated Stripe account"},
    "charges_enabled": True,
    "country": "US",
    "default_currency": "usd",
    "email": "owner@example.com",
    "type": "standard",
}
