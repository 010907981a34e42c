"""The Klaviyo connector over real HTTP against ``KlaviyoEmulator``: check, deliver, bulk, sync, webhooks.

Connector calls get a real context (a recording client, a logger); the sync tests that need the core run
``interlink.pipeline.sync.run_sync`` on a runtime, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from interlink import integrations
from interlink.connector import ConnectorContext, PermanentError, TransientError, WebhookRequest
from interlink.envelope import envelope
from interlink.plugins.klaviyo import KlaviyoConnector
from interlink.runtime import Runtime
from interlink.testing import EchoSink, FaultProxy
from interlink.testing.emulators.klaviyo import KlaviyoEmulator
from tests.connectors.helpers import consume as consume_sync
from tests.connectors.helpers import integration_at, make_context, sync_now
from tests.sync_helpers import published_per_record

INVALID_KEY = "Invalid API key — update settings.apiKey"
NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
Contexts = Callable[..., ConnectorContext]


@pytest.fixture
def emulator() -> Iterator[KlaviyoEmulator]:
    with KlaviyoEmulator() as emu:
        emu.clock = lambda: NOW.timestamp()
        yield emu


@pytest.fixture
def contexts(emulator: KlaviyoEmulator) -> Iterator[Contexts]:
    """Make connector contexts aimed at the emulator: ``contexts(state=..., **settings)``."""
    clients: list[httpx.Client] = []

    def make(**kwargs: Any) -> ConnectorContext:
        return make_context(emulator, "klaviyo", clients, now=lambda: NOW, **kwargs)

    yield make
    for client in clients:
        client.close()


def order(event_id: str = "evt_01JPLATFORM0001", **data: Any) -> dict[str, Any]:
    payload = {"id": "order-42", "email": "ada@example.com", "total": 19.99, **data}
    return {"id": event_id, "type": "order.created", "occurred_at": "2026-11-26T09:59:00Z", "data": payload}


def posts(emulator: KlaviyoEmulator, path: str | None = None) -> list[Any]:
    return [r for r in emulator.received if r.method == "POST" and (path is None or r.path == path)]


def event_queries(emulator: KlaviyoEmulator) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(r.path).query) for r in emulator.received if urlsplit(r.path).path == "/api/events"]


def consume(ctx: ConnectorContext, stop_after: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run a sync: its records and its checkpoints' states, stopping after ``stop_after`` checkpoints."""
    return consume_sync(KlaviyoConnector(), ctx, stop_after)


# -- check --------------------------------------------------------------------------------------------


def test_check_reads_the_account_with_klaviyo_headers_and_a_bad_key_names_the_setting(
    emulator: KlaviyoEmulator, contexts: Contexts
) -> None:
    result = KlaviyoConnector().check(contexts())
    assert (result.ok, result.message) == (True, "connected to the Klaviyo account Interlink Emulator Co.")
    seen = emulator.received[-1]
    assert (seen.method, seen.path) == ("GET", "/api/accounts")
    assert seen.headers["authorization"] == f"Klaviyo-API-Key {emulator.api_key}"
    assert seen.headers["revision"] == "2026-07-15"
    assert seen.headers["accept"] == "application/vnd.api+json"

    KlaviyoConnector().check(contexts(revision="2025-10-15", baseUrl=emulator.url + "/"))
    assert emulator.received[-1].headers["revision"] == "2025-10-15"

    with pytest.raises(PermanentError) as refused:
        KlaviyoConnector().check(contexts(apiKey="pk_wrong_0123456789abcdef"))
    assert (refused.value.setting, refused.value.message) == ("apiKey", INVALID_KEY)
    emulator.fail_next(1, 403)
    with pytest.raises(PermanentError, match=r"settings\.apiKey") as forbidden:
        KlaviyoConnector().check(contexts())
    assert forbidden.value.setting == "apiKey"


def test_check_is_transient_when_klaviyo_is_down_or_throttles(emulator: KlaviyoEmulator, contexts: Contexts) -> None:
    emulator.fail_next(1, 524)
    with pytest.raises(TransientError, match="HTTP 524"):
        KlaviyoConnector().check(contexts())
    emulator.enforce_tiers = True  # /api/accounts is tier XS: 1 a second
    KlaviyoConnector().check(contexts())
    with pytest.raises(TransientError) as throttled:
        KlaviyoConnector().check(contexts())
    assert throttled.value.delay == 1.0
    assert "rate limit" in throttled.value.message
    assert "ratelimit-limit" not in {k.lower() for k in emulator.received[-1].headers}  # (request headers)


def test_an_exhausted_steady_window_is_logged_at_debug(
    emulator: KlaviyoEmulator, contexts: Contexts, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="interlink.connector.klaviyo"):
        ctx = contexts()
        for _ in range(15):  # tier XS: 15 a minute
            KlaviyoConnector().check(ctx)
    exhausted = [r.getMessage() for r in caplog.records if "exhausted" in r.getMessage()]
    assert exhausted == ["klaviyo: steady rate-limit window of /api/accounts exhausted (limit 15); it resets in 60 s"]


# -- deliver ------------------------------------------------------------------------------------------


def test_deliver_tracks_the_event_with_its_id_as_unique_id_on_every_attempt_and_klaviyo_records_it_once(
    emulator: KlaviyoEmulator, contexts: Contexts
) -> None:
    event = order()
    emulator.fail_next(2, 503, when=lambda r: r.method == "POST")
    for _ in range(2):
        with pytest.raises(TransientError, match="HTTP 503"):
            KlaviyoConnector().deliver(contexts(), event, event["id"])
    KlaviyoConnector().deliver(contexts(), event, event["id"])
    KlaviyoConnector().deliver(contexts(), event, event["id"])  # a duplicate delivery: Klaviyo dedupes
    sent = posts(emulator)
    assert [r.path for r in sent] == ["/api/events"] * 4
    bodies = [json.loads(r.body) for r in sent]
    assert {b["data"]["attributes"]["unique_id"] for b in bodies} == {event["id"]}
    assert {r.headers["content-type"] for r in sent} == {"application/vnd.api+json"}
    assert bodies[0] == {
        "data": {
            "type": "event",
            "attributes": {
                "properties": event["data"],
                "metric": {"data": {"type": "metric", "attributes": {"name": "order.created"}}},
                "unique_id": event["id"],
                "time": "2026-11-26T09:59:00Z",
                "profile": {"data": {"type": "profile", "attributes": {"email": "ada@example.com"}}},
            },
        }
    }
    assert len(emulator.events) == 1
    recorded = emulator.events[0]
    assert (recorded["metric"], recorded["unique_id"], recorded["profile"]) == (
        "order.created",
        event["id"],
        {"email": "ada@example.com"},
    )
    assert recorded["properties"] == event["data"]
    assert recorded["datetime"] == "2026-11-26T09:59:00+00:00"
    assert len(emulator.duplicates) == 1


def test_deliver_finds_the_profile_in_the_data(emulator: KlaviyoEmulator, contexts: Contexts) -> None:
    ulid = "01GDDKASAP8TKDDA2GRZDSVP4H"
    emulator.profiles[ulid] = {"id": ulid, "email": "known@example.com", "properties": {}}
    cases = [
        ({"id": "o-1", "phone_number": "+15005550006"}, {"phone_number": "+15005550006"}),
        ({"id": "o-2", "customer": {"id": "c-9", "external_id": "user-9"}}, {"external_id": "user-9"}),
        ({"id": ulid, "total": 3}, {}),  # an id shaped as Klaviyo's names the profile itself
    ]
    for n, (data, identity) in enumerate(cases):
        event = {**order(f"evt_{n}"), "data": data}
        KlaviyoConnector().deliver(contexts(), event, event["id"])
        sent = json.loads(posts(emulator)[-1].body)["data"]["attributes"]["profile"]["data"]
        assert sent["attributes"] == identity
    assert sent["id"] == ulid
    assert emulator.events[-1]["profile_id"] == ulid
    with pytest.raises(PermanentError, match="names no Klaviyo profile"):
        KlaviyoConnector().deliver(contexts(), {**order(), "data": {"id": "order-1", "total": 3}}, "evt_x")
    many = {**order(), "data": {"email": "a@example.com", **{f"k{i}": i for i in range(400)}}}
    with pytest.raises(PermanentError, match="at most 400"):
        KlaviyoConnector().deliver(contexts(), many, "evt_y")


def test_an_inbound_envelope_becomes_a_klaviyo_event_on_the_subjects_profile(
    emulator: KlaviyoEmulator, contexts: Contexts
) -> None:
    paid = envelope(
        id="evt_1StripeInvoicePaid",
        type="invoice.paid",
        source="stripe",
        occurred_at=datetime(2026, 11, 26, 9, 30, tzinfo=UTC),
        subject={"id": "cus_42", "email": "ada@example.com", "external_id": "user-42"},
        data={"amount": 1999, "currency": "usd", "invoice": "in_1"},
        raw={"id": "evt_1StripeInvoicePaid", "object": "event"},
    )
    event = {"id": "evt_01JROUTED", "type": "invoice.paid", "occurred_at": "2026-11-26T09:30:01Z", "data": paid}
    KlaviyoConnector().deliver(contexts(), event, event["id"])
    [recorded] = emulator.events
    assert recorded["metric"] == "invoice.paid"
    assert recorded["profile"] == {"email": "ada@example.com", "external_id": "user-42"}
    assert recorded["unique_id"] == "evt_01JROUTED"
    assert recorded["properties"] == {
        "amount": 1999,
        "currency": "usd",
        "invoice": "in_1",
        "source_service": "stripe",
        "source_event_id": "evt_1StripeInvoicePaid",
        "source_customer_id": "cus_42",
    }
    assert (recorded["value"], recorded["value_currency"]) == (19.99, "USD")
    assert recorded["datetime"] == "2026-11-26T09:30:00+00:00"

    renewal = envelope(
        id="rc-1",
        type="RENEWAL",
        source="revenuecat",
        occurred_at="2026-11-26T09:00:00Z",
        subject={"external_id": "user-7"},
        data={"price": 9.99, "price_in_purchased_currency": 8.49, "currency": "EUR"},
        raw={},
    )
    KlaviyoConnector().deliver(contexts(), {**event, "id": "evt_2", "data": renewal}, "evt_2")
    renewed = emulator.events[-1]
    assert (renewed["metric"], renewed["value"], renewed["value_currency"]) == ("RENEWAL", 8.49, "EUR")
    assert renewed["profile"] == {"external_id": "user-7"}

    echoed = {**event, "data": {**paid, "source": "klaviyo"}}  # Klaviyo's own event: not sent back
    before = len(emulator.received)
    KlaviyoConnector().deliver(contexts(), echoed, "evt_3")
    assert len(emulator.received) == before


@pytest.mark.parametrize(
    ("data", "value"),
    [
        ({"amount": 1999, "currency": "usd"}, (19.99, "USD")),
        ({"amount": 500, "currency": "JPY"}, (500.0, "JPY")),
        ({"amount": 1234, "currency": "KWD"}, (1.234, "KWD")),
        ({"amount": 12.5, "currency": "EUR"}, (12.5, "EUR")),
        ({"price": 4.99, "currency": "EUR"}, (4.99, None)),
        ({"plan": "pro"}, (None, None)),
    ],
)
def test_an_envelopes_amount_or_price_becomes_the_events_value(
    emulator: KlaviyoEmulator, contexts: Contexts, data: dict[str, Any], value: tuple[Any, Any]
) -> None:
    routed = envelope(
        id="v-1", type="paid", source="acme", occurred_at=None, subject={"email": "a@b.co"}, data=data, raw={}
    )
    KlaviyoConnector().deliver(contexts(), {**order(), "data": routed}, "evt_v")
    [recorded] = emulator.events
    assert (recorded["value"], recorded["value_currency"]) == value


def test_customer_events_upsert_the_profile(emulator: KlaviyoEmulator, contexts: Contexts) -> None:
    created = {
        "id": "evt_c1",
        "type": "customer.created",
        "occurred_at": "2026-11-26T09:00:00Z",
        "data": {"id": "user-42", "email": "ada@example.com", "first_name": "Ada", "plan": "pro", "age": 36},
    }
    KlaviyoConnector().deliver(contexts(), created, created["id"])
    updated = {**created, "id": "evt_c2", "type": "customer.updated", "data": {"id": "user-42", "last_name": "L"}}
    KlaviyoConnector().deliver(contexts(), updated, updated["id"])
    sent = posts(emulator, "/api/profile-import")
    assert len(sent) == 2
    assert json.loads(sent[0].body) == {
        "data": {
            "type": "profile",
            "attributes": {
                "email": "ada@example.com",
                "external_id": "user-42",
                "first_name": "Ada",
                "properties": {"plan": "pro", "age": 36},
            },
        }
    }
    [profile] = emulator.profiles.values()
    assert (profile["email"], profile["external_id"], profile["first_name"], profile["last_name"]) == (
        "ada@example.com",
        "user-42",
        "Ada",
        "L",
    )
    assert emulator.events == []
    statuses = [r for r in emulator.received if r.path == "/api/profile-import"]
    assert len(statuses) == 2


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        *((status, TransientError) for status in (500, 502, 503, 504, 524)),
        *((status, PermanentError) for status in (400, 404, 409, 422)),
    ],
)
def test_deliver_classifies_klaviyo_answers(
    emulator: KlaviyoEmulator, contexts: Contexts, status: int, kind: type[Exception]
) -> None:
    emulator.fail_next(1, status)
    with pytest.raises(kind, match=f"HTTP {status}"):
        KlaviyoConnector().deliver(contexts(), order(), "evt_1")


def test_429_gives_the_retry_after_delay_and_the_next_attempt_succeeds(
    emulator: KlaviyoEmulator, contexts: Contexts
) -> None:
    emulator.fail_next(1, 429, headers={"Retry-After": "7"})
    with pytest.raises(TransientError) as throttled:
        KlaviyoConnector().deliver(contexts(), order(), "evt_1")
    assert throttled.value.delay == 7.0
    KlaviyoConnector().deliver(contexts(), order(), "evt_1")
    assert len(emulator.events) == 1


def test_klaviyo_validation_errors_are_permanent_and_say_where(emulator: KlaviyoEmulator, contexts: Contexts) -> None:
    with pytest.raises(PermanentError) as refused:
        KlaviyoConnector().deliver(contexts(), order(email="not-an-email"), "evt_1")
    assert "at /data/attributes/profile/data/attributes/email" in refused.value.message
    assert "Invalid email address" in refused.value.message
    with pytest.raises(PermanentError, match=r"settings\.revision") as revision:
        KlaviyoConnector().deliver(contexts(revision="bad"), order(), "evt_1")
    assert revision.value.setting == "revision"


# -- deliver_batch ------------------------------------------------------------------------------------


def batch_of(events: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    return [(e, str(e["id"])) for e in events]


def test_deliver_batch_uses_one_bulk_job_grouped_by_profile_and_returns_an_outcome_per_event(
    emulator: KlaviyoEmulator, contexts: Contexts
) -> None:
    events = [
        order("evt_1"),
        {**order("evt_2"), "data": {"email": "bob@example.com", "total": 5}},
        {"id": "evt_3", "type": "customer.updated", "occurred_at": "2026-11-26T09:00:00Z", "data": {"id": "u-3"}},
        {**order("evt_4"), "data": {"total": 1}},  # no profile: fails alone
        order("evt_5"),
    ]
    outcomes = KlaviyoConnector().deliver_batch(contexts(), batch_of(events))
    assert [type(o).__name__ if o else None for o in outcomes] == [None, None, None, "PermanentError", None]
    assert [r.path for r in posts(emulator)] == ["/api/profile-import", "/api/event-bulk-create-jobs"]
    job = json.loads(posts(emulator)[-1].body)["data"]
    assert job["type"] == "event-bulk-create-job"
    groups = job["attributes"]["events-bulk-create"]["data"]
    assert [g["attributes"]["profile"]["data"]["attributes"] for g in groups] == [
        {"email": "ada@example.com"},
        {"email": "bob@example.com"},
    ]
    assert [[e["attributes"]["unique_id"] for e in g["attributes"]["events"]["data"]] for g in groups] == [
        ["evt_1", "evt_5"],
        ["evt_2"],
    ]
    assert [(e["unique_id"], e["via"]) for e in emulator.events] == [
        ("evt_1", "bulk"),
        ("evt_5", "bulk"),
        ("evt_2", "bulk"),
    ]
    assert emulator.bulk_jobs[0]["events"] == 3


def test_deliver_batch_splits_jobs_at_1000_events(emulator: KlaviyoEmulator, contexts: Contexts) -> None:
    events = [order(f"evt_{i}", email=f"p{i % 3}@example.com") for i in range(1001)]
    outcomes = KlaviyoConnector().deliver_batch(contexts(), batch_of(events))
    assert outcomes == [None] * 1001
    assert [job["events"] for job in emulator.bulk_jobs] == [1000, 1]
    assert len(emulator.events) == 1001


def test_a_refused_job_is_retried_event_by_event_so_only_the_bad_event_fails(
    emulator: KlaviyoEmulator, contexts: Contexts
) -> None:
    events = [order("evt_1"), order("evt_2", email="not-an-email"), order("evt_3")]
    outcomes = KlaviyoConnector().deliver_batch(contexts(), batch_of(events))
    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], PermanentError)
    assert [r.path for r in posts(emulator)] == ["/api/event-bulk-create-jobs"] + ["/api/events"] * 3
    assert sorted(e["unique_id"] for e in emulator.events) == ["evt_1", "evt_3"]


def test_a_throttled_or_unauthorised_batch_stops_at_once(emulator: KlaviyoEmulator, contexts: Contexts) -> None:
    events = [order("evt_1"), {**order("evt_2"), "type": "customer.created"}, order("evt_3")]
    emulator.fail_next(1, 429, headers={"Retry-After": "9"})
    outcomes = KlaviyoConnector().deliver_batch(contexts(), batch_of(events))
    assert all(isinstance(o, TransientError) and o.delay == 9.0 for o in outcomes)
    assert len(posts(emulator)) == 1

    emulator.clear()
    outcomes = KlaviyoConnector().deliver_batch(contexts(apiKey="pk_wrong_0123456789"), batch_of(events))
    assert all(isinstance(o, PermanentError) and o.setting == "apiKey" for o in outcomes)
    assert len(posts(emulator)) == 1

    emulator.clear()
    emulator.fail_next(1, 503, when=lambda r: r.path == "/api/event-bulk-create-jobs")
    outcomes = KlaviyoConnector().deliver_batch(contexts(), batch_of(events))
    assert outcomes[1] is None  # the profile went in; the job's events are retried later
    assert isinstance(outcomes[0], TransientError)
    assert isinstance(outcomes[2], TransientError)


# -- sync ---------------------------------------------------------------------------------------------


def test_sync_pages_to_the_end_with_a_checkpoint_after_every_page(
    emulator: KlaviyoEmulator, contexts: Contexts
) -> None:
    made = emulator.add_events(450, ("Placed Order", "Opened Email"), start=NOW - timedelta(hours=1))
    records, states = consume(contexts())
    assert [r["id"] for r in records] == [e["id"] for e in made]
    assert len(states) == 3
    assert states[-1] == {"since": "2026-11-26T09:07:29Z", "seen": [made[-1]["id"]]}
    queries = event_queries(emulator)
    assert len(queries) == 3
    assert queries[0]["page[size]"] == ["200"]
    assert queries[0]["sort"] == ["datetime"]
    assert "filter" not in queries[0]
    assert [("page[cursor]" in q) for q in queries] == [False, True, True]
    assert {r["type"] for r in records} == {"event:klaviyo.placed_order", "event:klaviyo.opened_email"}
    first = records[0]
    assert first["source"] == "klaviyo"
    assert first["occurred_at"] == "2026-11-26T09:00:00+00:00"
    assert first["subject"]["email"] == "person0@example.com"
    assert first["data"]["metric"] == "Placed Order"
    assert first["data"]["properties"]["n"] == 0

    emulator.add_events(2, start=NOW)
    later, _ = consume(contexts(state=states[-1]))
    assert len(later) == 2
    assert event_queries(emulator)[-1]["filter"] == ["greater-or-equal(datetime,2026-11-26T09:07:29Z)"]


def test_sync_resumes_from_a_checkpoint_and_the_union_is_a_full_run(
    emulator: KlaviyoEmulator, contexts: Contexts
) -> None:
    # 300 events in one second: the first page's checkpoint falls inside that second.
    same_second = [
        emulator.add_event("Placed Order", profile={"email": f"s{i}@example.com"}, time=NOW - timedelta(minutes=5))
        for i in range(300)
    ]
    emulator.add_events(150, start=NOW - timedelta(minutes=4))
    full, _ = consume(contexts())
    assert len(full) == 450
    killed, states = consume(contexts(), stop_after=1)
    assert len(killed) == 200
    assert states[0]["since"] == "2026-11-26T09:55:00Z"
    assert len(states[0]["seen"]) == 200
    rest, _ = consume(contexts(state=states[0]))
    assert [r["id"] for r in killed + rest] == [r["id"] for r in full]
    assert same_second[0] is not None


def test_sync_follows_next_links_through_the_configured_base_url(emulator: KlaviyoEmulator, contexts: Contexts) -> None:
    """links.next names the host Klaviyo answered from; its query is sent to baseUrl (here a proxy)."""
    emulator.add_events(450)
    with FaultProxy(emulator.url) as proxy:
        records, _ = consume(contexts(baseUrl=proxy.url))
        seen = [r.path for r in proxy.requests]
    assert len(records) == 450
    assert len(seen) == 3 == len(event_queries(emulator))
    assert all(p.startswith("/api/events?") for p in seen)
    assert "page%5Bcursor%5D=" in seen[1]


def test_sync_429_gives_a_transient_error_with_the_retry_after_delay(
    emulator: KlaviyoEmulator, contexts: Contexts
) -> None:
    emulator.add_events(250)
    emulator.fail_next(1, 429, headers={"Retry-After": "4"}, when=lambda r: r.arg("page[cursor]") is not None)
    records: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []

    def run() -> None:
        for item in KlaviyoConnector().sync(contexts()):
            (states if set(item) == {"checkpoint"} else records).append(item)

    with pytest.raises(TransientError) as throttled:
        run()
    assert throttled.value.delay == 4.0
    assert len(records) == 200
    assert len(states) == 1
    rest, _ = consume(contexts(state=states[0]["checkpoint"]))
    assert len(records) + len(rest) == 250


# -- sync through the core --------------------------------------------------------------------------


def klaviyo_integration(
    runtime: Runtime, emulator: KlaviyoEmulator, tenant: str = "acme", **settings: Any
) -> tuple[str, str]:
    """A new tenant and its Klaviyo integration aimed at the emulator: their ids."""
    return integration_at(runtime, emulator, "klaviyo", tenant, **settings)


def test_core_sync_rides_out_a_429_and_publishes_every_event_once(runtime: Runtime, emulator: KlaviyoEmulator) -> None:
    made = emulator.add_events(250, ("Placed Order", "Opened Email"))
    tenant_id, integration_id = klaviyo_integration(runtime, emulator)
    emulator.fail_next(1, 429, headers={"Retry-After": "1"}, when=lambda r: r.arg("page[cursor]") is not None)
    done = sync_now(runtime, tenant_id, integration_id)
    assert (done["status"], done["error"]) == ("succeeded", None)
    assert published_per_record(runtime, integration_id) == {e["id"]: 1 for e in made}

    more = emulator.add_events(3, start=NOW)
    assert sync_now(runtime, tenant_id, integration_id)["status"] == "succeeded"
    published = published_per_record(runtime, integration_id)
    assert set(published) == {e["id"] for e in made + more}
    assert set(published.values()) == {1}


def test_core_sync_with_a_bad_key_fails_and_names_the_api_key(runtime: Runtime, emulator: KlaviyoEmulator) -> None:
    tenant_id, wrong = klaviyo_integration(runtime, emulator, apiKey="pk_not_the_key_0000000000")
    done = sync_now(runtime, tenant_id, wrong)
    assert (done["status"], done["error"]) == ("failed", INVALID_KEY)
    shown = integrations.get_integration(runtime, tenant_id, wrong)
    assert (shown.status, shown.error_message) == ("error", INVALID_KEY)


# -- webhooks -----------------------------------------------------------------------------------------


def webhook(body: bytes, headers: dict[str, str], received: datetime = NOW) -> WebhookRequest:
    return WebhookRequest("POST", "/v1/hooks/int_test", headers, body, received)


def refusal(contexts: Contexts, request: WebhookRequest, **settings: Any) -> PermanentError:
    with pytest.raises(PermanentError) as refused:
        KlaviyoConnector().verify_webhook(contexts(**settings), request)
    assert refused.value.setting == "webhookSecret"
    return refused.value


def test_a_genuine_webhook_sent_over_http_is_accepted_and_parsed(emulator: KlaviyoEmulator, contexts: Contexts) -> None:
    opened = emulator.add_event("Opened Email", profile={"email": "ada@example.com", "external_id": "u-1"})
    clicked = emulator.add_event("Clicked Email", profile={"email": "ada@example.com"})
    assert opened is not None
    assert clicked is not None
    with EchoSink() as sink:
        answer = emulator.send_webhook(sink.url + "/hook", [opened, clicked])
        assert answer.status_code == 200
        [seen] = sink.received
    request = webhook(seen.body, seen.headers)
    assert set(seen.headers) >= {"klaviyo-signature", "klaviyo-timestamp", "klaviyo-webhook-id"}
    assert KlaviyoConnector().verify_webhook(contexts(), request) is None
    result = KlaviyoConnector().handle_webhook(contexts(), request)
    assert [(e["id"], e["type"]) for e in result.events] == [
        (opened["id"], "event:klaviyo.opened_email"),
        (clicked["id"], "event:klaviyo.clicked_email"),
    ]
    first = result.events[0]
    assert first["source"] == "klaviyo"
    assert first["subject"] == {"id": opened["profile_id"], "email": "ada@example.com", "external_id": "u-1"}
    assert first["occurred_at"] == opened["datetime"]
    assert first["data"]["klaviyo_account_id"] == "EmuAcc"


def test_webhook_refusals_name_the_webhook_secret(emulator: KlaviyoEmulator, contexts: Contexts) -> None:
    body = emulator.sample_webhook()
    headers = emulator.sign(body)
    assert KlaviyoConnector().verify_webhook(contexts(), webhook(body, headers)) is None

    tampered = refusal(contexts, webhook(body.replace(b"opened", b"closed"), headers))
    assert "does not match" in tampered.message
    refusal(contexts, webhook(body, emulator.sign(body, secret="another_secret_0123456789")))
    bare = {"Content-Type": "application/json"}
    assert "no Klaviyo-Signature" in refusal(contexts, webhook(body, bare)).message
    stale = refusal(contexts, webhook(body, headers, received=NOW + timedelta(minutes=6)))
    assert "5 minutes" in stale.message
    assert "settings.webhookSecret" in refusal(contexts, webhook(body, headers), webhookSecret=None).message

    # Tolerated: four minutes of skew either way, a unix-seconds timestamp, header names in any case.
    KlaviyoConnector().verify_webhook(contexts(), webhook(body, headers, received=NOW - timedelta(minutes=4)))
    unix = emulator.sign(body, int(NOW.timestamp()))
    assert unix["Klaviyo-Timestamp"] == str(int(NOW.timestamp()))
    KlaviyoConnector().verify_webhook(contexts(), webhook(body, {k.upper(): v for k, v in unix.items()}))
    assert headers["Klaviyo-Timestamp"] == "Thu, 26 Nov 2026 10:00:00 GMT"


def test_a_webhook_body_that_is_not_a_batch_is_refused(contexts: Contexts) -> None:
    for body in (b"not json", b'{"meta": {}}'):
        with pytest.raises(PermanentError):
            KlaviyoConnector().handle_webhook(contexts(), webhook(body, {}))
    empty = KlaviyoConnector().handle_webhook(contexts(), webhook(b'{"data": [{"topic": "event:klaviyo.x"}]}', {}))
    [only] = empty.events
    assert only["id"].startswith("klaviyo_webhook_")
    assert only["type"] == "event:klaviyo.x"


# -- the emulator -------------------------------------------------------------------------------------


def test_the_emulator_answers_as_klaviyo_documents(emulator: KlaviyoEmulator) -> None:
    client = httpx.Client(timeout=5.0)

    def call(emulator: KlaviyoEmulator, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Klaviyo-API-Key {emulator.api_key}", "revision": "2026-07-15"}
        headers.update(kwargs.pop("headers", {}))
        return client.request(method, emulator.url + path, headers=headers, **kwargs)

    no_revision = call(emulator, "GET", "/api/accounts", headers={"revision": ""})
    assert no_revision.status_code == 400
    [error] = no_revision.json()["errors"]
    assert set(error) == {"id", "status", "code", "title", "detail", "source"}
    assert error["source"] == {"parameter": "revision"}
    assert call(emulator, "GET", "/api/accounts", headers={"Authorization": "Bearer x"}).status_code == 401
    for size in ("0", "1001", "x"):
        assert call(emulator, "GET", "/api/events", params={"page[size]": size}).status_code == 400
    assert call(emulator, "GET", "/api/events", params={"filter": "contains(metric,'x')"}).status_code == 400
    assert call(emulator, "GET", "/api/events", params={"page[cursor]": "nonsense"}).status_code == 400

    ok = call(emulator, "GET", "/api/accounts")
    assert ok.headers["content-type"] == "application/vnd.api+json"
    assert (ok.headers["ratelimit-limit"], ok.headers["ratelimit-reset"]) == ("15", "60")
    emulator.enforce_tiers = True
    throttled = call(emulator, "GET", "/api/accounts")
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "1"
    assert "ratelimit-limit" not in throttled.headers
    assert throttled.json()["errors"][0]["code"] == "throttled"

    emulator.add_events(5, start=NOW - timedelta(minutes=10), step=timedelta(minutes=1))
    newest = call(
        emulator,
        "GET",
        "/api/events",
        params={"sort": "-datetime", "filter": "greater-than(datetime,2026-11-26T09:51:00+00:00)", "include": "metric"},
    ).json()
    assert [e["attributes"]["datetime"] for e in newest["data"]] == [
        "2026-11-26T09:54:00+00:00",
        "2026-11-26T09:53:00+00:00",
        "2026-11-26T09:52:00+00:00",
    ]
    assert newest["included"][0]["attributes"]["name"] == "Placed Order"
    assert newest["links"]["next"] is None

    profile = {"data": {"type": "profile", "attributes": {"email": "x@example.com"}}}
    metric = {"data": {"type": "metric", "attributes": {"name": "Viewed"}}}
    body = {"data": {"type": "event", "attributes": {"properties": {}, "metric": metric, "profile": profile}}}
    created = call(emulator, "POST", "/api/events", json=body, headers={"Content-Type": "application/vnd.api+json"})
    assert (created.status_code, created.content) == (202, b"")
    again = call(emulator, "POST", "/api/events", json=body, headers={"Content-Type": "application/vnd.api+json"})
    assert again.status_code == 202
    assert [e["metric"] for e in emulator.events].count("Viewed") == 1  # same profile, metric and second
    wrong = {"data": {"type": "event", "attributes": {"properties": {}, "metric": metric}}}
    refused = call(emulator, "POST", "/api/events", json=wrong)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["source"] == {"pointer": "/data/attributes/profile/data"}
    imported = {"data": {"type": "profile", "attributes": {"email": "x@example.com", "first_name": "X"}}}
    assert call(emulator, "POST", "/api/profile-import", json=imported).status_code == 200
    imported["data"]["attributes"]["email"] = "new@example.com"
    assert call(emulator, "POST", "/api/profile-import", json=imported).status_code == 201
    client.close()
