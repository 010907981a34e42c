"""The Stripe connector over real HTTP against ``StripeEmulator``: check, sync, deliver, webhooks.

Connector calls get a real context (a recording client, a logger, a clock); the sync tests that need
the core run ``interlink.pipeline.sync.run_sync`` on a runtime, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar.testing import TestClient

from interlink import integrations
from interlink.config import Config
from interlink.connector import ConnectorContext, PermanentError, TransientError, WebhookRequest
from interlink.plugins.stripe import StripeConnector
from interlink.runtime import Runtime
from interlink.testing import EchoSink
from interlink.testing.emulators.stripe import StripeEmulator
from tests.connectors.helpers import consume as consume_sync
from tests.connectors.helpers import integration_at, make_context, sync_now
from tests.pipeline_helpers import all_in, publish, wait_for
from tests.sync_helpers import published_per_record

NOW = 1_790_000_000
DAY = 86_400
INVALID_KEY = "Invalid API key — update settings.apiKey"
Contexts = Callable[..., ConnectorContext]


@pytest.fixture
def emulator() -> Iterator[StripeEmulator]:
    with StripeEmulator() as emu:
        yield emu


@pytest.fixture
def fixed(emulator: StripeEmulator) -> StripeEmulator:
    """The emulator with its clock stopped at :data:`NOW`, as the contexts' clock is."""
    emulator.clock = lambda: NOW
    return emulator


@pytest.fixture
def contexts(emulator: StripeEmulator) -> Iterator[Contexts]:
    """Make connector contexts aimed at the emulator: ``contexts(state=..., now=..., **settings)``."""
    clients: list[httpx.Client] = []

    def make(*, now: int = NOW, **kwargs: Any) -> ConnectorContext:
        return make_context(emulator, "stripe", clients, now=lambda: datetime.fromtimestamp(now, UTC), **kwargs)

    yield make
    for client in clients:
        client.close()


def consume(ctx: ConnectorContext, stop_after: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run a sync: its records and its checkpoints' states, stopping after ``stop_after`` checkpoints."""
    return consume_sync(StripeConnector(), ctx, stop_after)


def event_requests(emulator: StripeEmulator) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(r.path).query) for r in emulator.received if urlsplit(r.path).path == "/v1/events"]


# -- check --------------------------------------------------------------------------------------------


def test_check_reaches_the_balance_and_a_bad_key_names_the_setting(
    emulator: StripeEmulator, contexts: Contexts
) -> None:
    result = StripeConnector().check(contexts(accountId="acct_123", apiVersion="2026-06-24.dahlia"))
    assert result.ok
    assert result.message == "connected to Stripe (test mode, account acct_123)"
    seen = emulator.received[-1]
    assert (seen.method, seen.path) == ("GET", "/v1/balance")
    assert seen.headers["authorization"] == f"Bearer {emulator.api_key}"
    assert seen.headers["stripe-account"] == "acct_123"
    assert seen.headers["stripe-version"] == "2026-06-24.dahlia"

    with pytest.raises(PermanentError) as refused:
        StripeConnector().check(contexts(apiKey="sk_test_wrong_0123456789abcdef"))
    assert refused.value.setting == "apiKey"
    assert refused.value.message == INVALID_KEY
    assert "wrong" not in str(refused.value)


def test_check_is_transient_when_stripe_is_down_or_slow(emulator: StripeEmulator, contexts: Contexts) -> None:
    emulator.fail_next(1, 503)
    with pytest.raises(TransientError, match="HTTP 503 api_error"):
        StripeConnector().check(contexts())
    emulator.slow_next(1, seconds=1.0)
    with pytest.raises(TransientError, match="timed out"):
        StripeConnector().check(contexts(timeout=0.2))
    assert StripeConnector().check(contexts()).ok


# -- sync ---------------------------------------------------------------------------------------------


def test_sync_pages_to_the_end_with_a_checkpoint_after_every_page(fixed: StripeEmulator, contexts: Contexts) -> None:
    fixed.add_events(250, ("invoice.paid", "charge.succeeded"), start=NOW - 2 * DAY)
    records, states = consume(contexts())
    assert sorted(r["id"] for r in records) == sorted(fixed.event_ids())
    assert len({r["id"] for r in records}) == 250
    queries = event_requests(fixed)
    assert [q["limit"] for q in queries] == [["100"]] * 3
    assert [q.get("starting_after") for q in queries] == [None, [records[99]["id"]], [records[199]["id"]]]
    assert all(q["created[gte]"] == [str(NOW - 30 * DAY)] and q["created[lte]"] == [str(NOW)] for q in queries)
    assert states == [
        {"cursor": NOW - 30 * DAY, "until": NOW, "after": records[99]["id"]},
        {"cursor": NOW - 30 * DAY, "until": NOW, "after": records[199]["id"]},
        {"cursor": NOW - 300},
    ]
    fixed.clear()
    again, _ = consume(contexts(state=states[-1], now=NOW + 60))
    assert again == []  # nothing new; the next run only reads the last few minutes
    assert event_requests(fixed)[0]["created[gte]"] == [str(NOW - 300)]


def test_sync_yields_envelopes_with_subject_and_neutral_data(fixed: StripeEmulator, contexts: Contexts) -> None:
    invoice = {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_1",
        "customer_email": "ada@example.com",
        "amount_paid": 1999,
        "currency": "eur",
        "status": "paid",
        "metadata": {"external_id": "user-42"},
    }
    event = fixed.add_event("invoice.paid", invoice, created=NOW - 10)
    (record,), _ = consume(contexts())
    assert record == {
        "id": event["id"],
        "type": "invoice.paid",
        "occurred_at": datetime.fromtimestamp(NOW - 10, UTC).isoformat().replace("+00:00", "Z"),
        "source": "stripe",
        "subject": {"id": "cus_1", "email": "ada@example.com", "external_id": "user-42"},
        "data": {
            "object": "invoice",
            "object_id": "in_1",
            "amount": 1999,
            "currency": "EUR",
            "status": "paid",
            "livemode": False,
        },
        "raw": event,
    }


def test_sync_resumes_from_every_checkpoint_and_the_union_is_a_full_run(
    fixed: StripeEmulator, contexts: Contexts
) -> None:
    fixed.add_events(250, start=NOW - DAY)
    full, states = consume(contexts())
    for k, state in enumerate(states[:-1], start=1):
        before, kept = consume(contexts(), stop_after=k)
        assert kept[-1] == state
        fixed.add_event("charge.succeeded", {"id": f"ch_late{k}", "object": "charge"}, created=NOW + k)
        after, _ = consume(contexts(state=state, now=NOW + 100))  # the same window: the late one waits
        assert sorted(r["id"] for r in before + after) == sorted(r["id"] for r in full)
        assert len(before) == 100 * k
    late, _ = consume(contexts(state=states[-1], now=NOW + 100))
    assert sorted(r["raw"]["data"]["object"]["id"] for r in late) == ["ch_late1", "ch_late2"]


def test_sync_clamps_an_old_cursor_to_30_days_with_a_warning(
    fixed: StripeEmulator, contexts: Contexts, caplog: pytest.LogCaptureFixture
) -> None:
    fixed.add_event("charge.succeeded", {"id": "ch_old", "object": "charge"}, created=NOW - 31 * DAY)
    recent = fixed.add_event("charge.succeeded", {"id": "ch_new", "object": "charge"}, created=NOW - DAY)
    with caplog.at_level(logging.WARNING, logger="interlink.connector.stripe"):
        first, _ = consume(contexts())
    assert [r["id"] for r in first] == [recent["id"]]
    assert caplog.records == []  # a first run starts 30 days back without a warning
    with caplog.at_level(logging.WARNING, logger="interlink.connector.stripe"):
        again, states = consume(contexts(state={"cursor": NOW - 40 * DAY}))
    assert [r["id"] for r in again] == [recent["id"]]
    assert event_requests(fixed)[-1]["created[gte]"] == [str(NOW - 30 * DAY)]
    assert "older than the 30 days" in caplog.text
    assert states == [{"cursor": NOW - 300}]


def test_sync_reads_the_window_again_when_stripe_forgets_the_cursor_event(
    fixed: StripeEmulator, contexts: Contexts, caplog: pytest.LogCaptureFixture
) -> None:
    fixed.add_events(30, start=NOW - DAY)
    state = {"cursor": NOW - 2 * DAY, "until": NOW, "after": "evt_1Emu99999999999999999999"}
    with caplog.at_level(logging.WARNING, logger="interlink.connector.stripe"):
        records, states = consume(contexts(state=state))
    assert sorted(r["id"] for r in records) == sorted(fixed.event_ids())
    assert "no longer knows event" in caplog.text
    assert states == [{"cursor": NOW - 300}]


def test_sync_429_gives_a_transient_error_with_the_retry_after_delay(fixed: StripeEmulator, contexts: Contexts) -> None:
    fixed.add_events(150, start=NOW - DAY)
    fixed.fail_next(1, 429, headers={"Retry-After": "7"}, when=lambda r: r.arg("starting_after") is not None)
    records: list[dict[str, Any]] = []
    items = StripeConnector().sync(contexts())
    with pytest.raises(TransientError) as busy:
        records.extend(items)
    assert busy.value.delay == 7.0
    assert "rate_limit_error" in busy.value.message
    *page, checkpoint = records  # the first page is in, and checkpointed
    assert len(page) == 100
    assert checkpoint == {"checkpoint": {"cursor": NOW - 30 * DAY, "until": NOW, "after": page[-1]["id"]}}
    rest, _ = consume(contexts(state=checkpoint["checkpoint"]))
    assert len(rest) == 50


# -- sync through the core --------------------------------------------------------------------------


def stripe_integration(
    runtime: Runtime, emulator: StripeEmulator, tenant: str = "acme", **settings: Any
) -> tuple[str, str]:
    """A new tenant and its Stripe integration aimed at the emulator: their ids."""
    return integration_at(runtime, emulator, "stripe", tenant, **settings)


def test_core_sync_rides_out_a_429_and_publishes_every_event_once(runtime: Runtime, emulator: StripeEmulator) -> None:
    emulator.add_events(250, ("invoice.paid", "customer.subscription.updated"))
    tenant_id, integration_id = stripe_integration(runtime, emulator)
    emulator.fail_next(1, 429, when=lambda r: r.arg("starting_after") is not None)
    done = sync_now(runtime, tenant_id, integration_id)
    assert (done["status"], done["error"]) == ("succeeded", None)
    assert published_per_record(runtime, integration_id) == {i: 1 for i in emulator.event_ids()}
    afters = [q.get("starting_after") for q in event_requests(emulator)]
    assert afters[1] == afters[2] is not None  # the 429'd page was asked for again, not the first one
    assert len(afters) == 4

    emulator.add_event("charge.refunded", {"id": "ch_9", "object": "charge", "amount": 10, "currency": "usd"})
    assert sync_now(runtime, tenant_id, integration_id)["status"] == "succeeded"
    published = published_per_record(runtime, integration_id)
    assert len(published) == 251
    assert set(published.values()) == {1}


def test_core_sync_retries_a_5xx_fails_at_once_on_a_4xx_and_names_the_api_key(
    runtime: Runtime, emulator: StripeEmulator
) -> None:
    emulator.add_events(3)
    tenant_id, integration_id = stripe_integration(runtime, emulator)
    emulator.fail_next(1, 500)
    done = sync_now(runtime, tenant_id, integration_id)
    assert (done["status"], done["records_read"]) == ("succeeded", 3)
    assert len(event_requests(emulator)) == 2

    emulator.clear()
    bad = {"error": {"type": "invalid_request_error", "message": "Invalid timestamp", "param": "created"}}
    emulator.fail_next(1, 400, body=bad)
    done = sync_now(runtime, tenant_id, integration_id)
    assert done["status"] == "failed"
    assert "HTTP 400 invalid_request_error on created: Invalid timestamp" in done["error"]
    assert len(event_requests(emulator)) == 1  # not retried

    tenant_id, wrong = stripe_integration(runtime, emulator, "other", apiKey="sk_test_not_the_key_000000")
    done = sync_now(runtime, tenant_id, wrong)
    assert (done["status"], done["error"]) == ("failed", INVALID_KEY)
    shown = integrations.get_integration(runtime, tenant_id, wrong)
    assert (shown.status, shown.error_message) == ("error", INVALID_KEY)


# -- deliver ------------------------------------------------------------------------------------------


def customer_event(event_type: str = "customer.created", **data: Any) -> dict[str, Any]:
    payload = {"id": "user-42", "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", **data}
    return {"id": "evt_01JPLATFORM0001", "type": event_type, "occurred_at": "2026-11-26T10:00:00Z", "data": payload}


def posts(emulator: StripeEmulator) -> list[Any]:
    return [r for r in emulator.received if r.method == "POST"]


def test_deliver_sends_the_event_id_as_idempotency_key_on_every_attempt_and_creates_one_customer(
    emulator: StripeEmulator, contexts: Contexts
) -> None:
    event = customer_event(metadata={"plan": "pro"}, address={"line1": "1 Main St", "zip": "10001"})
    emulator.fail_next(2, 503, when=lambda r: r.method == "POST")
    for _ in range(2):
        with pytest.raises(TransientError):
            StripeConnector().deliver(contexts(), event, event["id"])
    StripeConnector().deliver(contexts(), event, event["id"])
    StripeConnector().deliver(contexts(), event, event["id"])  # a duplicate delivery: Stripe replays
    sent = posts(emulator)
    assert [r.path for r in sent] == ["/v1/customers"] * 4
    assert {r.headers["idempotency-key"] for r in sent} == {event["id"]}
    assert {r.headers["content-type"] for r in sent} == {"application/x-www-form-urlencoded"}
    assert parse_qs(sent[-1].body.decode()) == {
        "email": ["ada@example.com"],
        "name": ["Ada Lovelace"],
        "address[line1]": ["1 Main St"],
        "address[postal_code]": ["10001"],
        "metadata[plan]": ["pro"],
        "metadata[external_id]": ["user-42"],
    }
    (customer,) = emulator.customers.values()
    assert customer["metadata"] == {"plan": "pro", "external_id": "user-42"}


def test_deliver_updates_the_customer_found_by_id_or_by_metadata(emulator: StripeEmulator, contexts: Contexts) -> None:
    StripeConnector().deliver(contexts(), customer_event(), "evt_a")
    (created,) = emulator.customers.values()
    StripeConnector().deliver(contexts(), customer_event("customer.updated", email="new@example.com"), "evt_b")
    assert emulator.received[-2].path.startswith("/v1/customers/search?")
    assert emulator.received[-1].path == f"/v1/customers/{created['id']}"
    assert emulator.customers[created["id"]]["email"] == "new@example.com"
    named = customer_event("customer.updated", stripe_customer_id=created["id"], phone="+15550100")
    StripeConnector().deliver(contexts(accountId="acct_9"), named, "evt_c")
    assert emulator.received[-1].path == f"/v1/customers/{created['id']}"
    assert emulator.received[-1].headers["stripe-account"] == "acct_9"
    (customer,) = emulator.customers.values()
    assert (customer["email"], customer["phone"]) == ("ada@example.com", "+15550100")
    StripeConnector().deliver(contexts(), customer_event("customer.updated", id="user-7"), "evt_d")
    assert len(emulator.customers) == 2  # no Customer had that platform id: created


def test_deliver_replays_the_create_when_a_retry_finds_its_own_customer(
    emulator: StripeEmulator, contexts: Contexts
) -> None:
    update = customer_event("customer.updated", id="user-9")
    StripeConnector().deliver(contexts(), update, "evt_u")  # not found: created under key evt_u
    StripeConnector().deliver(contexts(), update, "evt_u")  # a retry now finds it; the key belongs to the create
    (customer_id,) = emulator.customers
    assert [r.path for r in posts(emulator)] == ["/v1/customers", f"/v1/customers/{customer_id}", "/v1/customers"]
    assert {r.headers["idempotency-key"] for r in posts(emulator)} == {"evt_u"}


@pytest.mark.parametrize(
    ("status", "headers", "expected", "setting"),
    [
        (400, {}, PermanentError, None),
        (404, {}, PermanentError, None),
        (401, {}, PermanentError, "apiKey"),
        (403, {}, PermanentError, "apiKey"),
        (409, {}, TransientError, None),
        (429, {}, TransientError, None),
        (500, {}, TransientError, None),
        (503, {"Stripe-Should-Retry": "false"}, PermanentError, None),
        (400, {"Stripe-Should-Retry": "true"}, TransientError, None),
    ],
)
def test_deliver_classifies_stripe_answers(
    emulator: StripeEmulator,
    contexts: Contexts,
    status: int,
    headers: dict[str, str],
    expected: type[Exception],
    setting: str | None,
) -> None:
    emulator.fail_next(1, status, headers=headers)
    with pytest.raises(expected) as raised:
        StripeConnector().deliver(contexts(), customer_event(), "evt_x")
    assert getattr(raised.value, "setting", None) == setting
    assert emulator.api_key not in str(raised.value)
    assert emulator.customers == {}


def test_deliver_sends_nothing_back_for_an_event_that_came_from_stripe(
    emulator: StripeEmulator, contexts: Contexts
) -> None:
    inbound = {"id": "evt_1", "type": "customer.created", "occurred_at": None, "source": "stripe"}
    event = {**customer_event(), "data": {**inbound, "subject": {}, "data": {}, "raw": {}}}
    StripeConnector().deliver(contexts(), event, "evt_y")
    assert emulator.received == []
    with pytest.raises(PermanentError, match=r"not 'order\.created'"):
        StripeConnector().deliver(contexts(), {**customer_event(), "type": "order.created"}, "evt_z")


def test_deliver_takes_the_customer_from_another_sources_envelope(emulator: StripeEmulator, contexts: Contexts) -> None:
    subject = {"id": "rc_1", "email": "grace@example.com", "external_id": "user-7"}
    routed = {"id": "rc_evt_1", "type": "customer.created", "occurred_at": None, "source": "revenuecat"}
    event = {**customer_event(), "data": {**routed, "subject": subject, "data": {"amount": 999}, "raw": {}}}
    StripeConnector().deliver(contexts(), event, "evt_r")
    (customer,) = emulator.customers.values()
    assert (customer["email"], customer["metadata"]) == ("grace@example.com", {"external_id": "user-7"})


# -- webhooks -----------------------------------------------------------------------------------------


def webhook(emulator: StripeEmulator, body: bytes, signature: str | None, received: int = NOW) -> WebhookRequest:
    headers = {"Content-Type": "application/json"} | ({"Stripe-Signature": signature} if signature else {})
    return WebhookRequest("POST", "/v1/hooks/int_test", headers, body, datetime.fromtimestamp(received, UTC))


def refusal(contexts: Contexts, request: WebhookRequest, **settings: Any) -> PermanentError:
    with pytest.raises(PermanentError) as refused:
        StripeConnector().verify_webhook(contexts(**settings), request)
    return refused.value


def test_a_genuine_webhook_sent_over_http_is_accepted_and_parsed(emulator: StripeEmulator, contexts: Contexts) -> None:
    charge = {"id": "ch_1", "object": "charge", "amount": 500, "currency": "usd", "customer": "cus_7"}
    event = emulator.event("charge.succeeded", charge, created=NOW - 5)
    with EchoSink() as sink:
        assert emulator.send_webhook(sink.url + "/v1/hooks/int_test", event, timestamp=NOW - 5).status_code == 200
    (seen,) = sink.received
    request = webhook(emulator, seen.body, seen.headers["stripe-signature"], received=NOW)
    assert StripeConnector().verify_webhook(contexts(), request) is None
    result = StripeConnector().handle_webhook(contexts(), request)
    (envelope,) = result.events
    assert (envelope["id"], envelope["type"], envelope["source"]) == (event["id"], "charge.succeeded", "stripe")
    assert envelope["subject"] == {"id": "cus_7"}
    assert envelope["data"]["amount"] == 500
    assert envelope["raw"] == event


def test_webhook_refusals_name_the_webhook_secret(emulator: StripeEmulator, contexts: Contexts) -> None:
    body = json.dumps(emulator.event("invoice.paid", {"id": "in_1", "object": "invoice"})).encode()
    signature = emulator.sign(body, NOW)
    tampered = refusal(contexts, webhook(emulator, body.replace(b"in_1", b"in_2"), signature))
    wrong = refusal(contexts, webhook(emulator, body, emulator.sign(body, NOW, "whsec_someone_else")))
    missing = refusal(contexts, webhook(emulator, body, None))
    stale = refusal(contexts, webhook(emulator, body, signature, received=NOW + 301))
    unset = refusal(contexts, webhook(emulator, body, signature), webhookSecret=None)
    assert {e.setting for e in (tampered, wrong, missing, stale, unset)} == {"webhookSecret"}
    assert tampered.message.startswith("Webhook signature verification failed — check settings.webhookSecret")
    assert wrong.message == tampered.message
    assert "no Stripe-Signature header" in missing.message
    assert "signed 301 s before it arrived" in stale.message
    assert "into settings.webhookSecret" in unset.message
    for error in (tampered, wrong, missing, stale, unset):
        assert emulator.webhook_secret not in str(error)
    at_the_edge = webhook(emulator, body, signature, received=NOW + 300)
    assert StripeConnector().verify_webhook(contexts(), at_the_edge) is None
    rolled = webhook(emulator, body, f"{emulator.sign(body, NOW, 'whsec_old')},v1={signature.split('v1=')[1]}")
    assert StripeConnector().verify_webhook(contexts(), rolled) is None  # any v1 may match


def test_thin_v2_notifications_are_refused(emulator: StripeEmulator, contexts: Contexts) -> None:
    body = json.dumps({"id": "evt_2", "object": "v2.core.event", "type": "v1.billing.meter.error_report_triggered"})
    error = refusal(contexts, webhook(emulator, body.encode(), emulator.sign(body.encode(), NOW)))
    assert "Thin event notifications" in error.message


# -- through the API and the in-process worker ---------------------------------------------------------


@pytest.fixture
def live(config: Config) -> Iterator[Runtime]:
    """A runtime whose in-process worker and reaper run (``api`` and ``tenant`` come from conftest)."""
    runtime = Runtime.start(dataclasses.replace(config, redispatch_after=1.0, reaper_interval=0.2))
    runtime.pipeline.start(threads=2)
    yield runtime
    runtime.close()


def test_a_platform_customer_reaches_stripe_through_the_core_delivery(
    api: TestClient, tenant: dict[str, str], live: Runtime, emulator: StripeEmulator
) -> None:
    body = {
        "service": "stripe",
        "settings": {"apiKey": emulator.api_key, "baseUrl": emulator.url},
        "synchronizations": [{"eventType": "customer.created", "enabled": True}],
        "retrySchedule": [0, 0],
    }
    assert api.post("/v1/integrations", json=body, headers=tenant).status_code == 201
    emulator.fail_next(1, 503, when=lambda r: r.method == "POST")
    (delivery,) = publish(api, tenant, {"type": "customer.created", "data": {"id": "user-1", "email": "a@b.co"}})
    wait_for(lambda: all_in(live, [delivery], {"succeeded"}), timeout=20)
    assert [r.headers["idempotency-key"] for r in posts(emulator)] == [delivery, delivery]
    (customer,) = emulator.customers.values()
    assert (customer["email"], customer["metadata"]) == ("a@b.co", {"external_id": "user-1"})


def test_a_signed_stripe_webhook_becomes_an_inbound_event_and_a_tampered_one_is_refused(
    api: TestClient, tenant: dict[str, str], live: Runtime, emulator: StripeEmulator
) -> None:
    settings = {"apiKey": emulator.api_key, "baseUrl": emulator.url, "webhookSecret": emulator.webhook_secret}
    created = api.post("/v1/integrations", json={"service": "stripe", "settings": settings}, headers=tenant)
    integration_id = created.json()["integration"]["id"]
    event = emulator.event("invoice.paid", {"id": "in_1", "object": "invoice", "amount_paid": 900, "currency": "usd"})
    body = json.dumps(event).encode()
    assert (
        api.post(f"/v1/hooks/{integration_id}", content=body, headers=emulator.webhook_headers(body)).status_code == 200
    )
    assert (
        api.post(f"/v1/hooks/{integration_id}", content=body, headers=emulator.webhook_headers(body)).status_code == 200
    )

    def inbound() -> list[dict[str, Any]]:
        found = api.post("/v1/integrations/events/filter", json={"integrationId": integration_id}, headers=tenant)
        return [e for e in found.json()["events"] if e["direction"] == "inbound"]

    (recorded,) = wait_for(inbound, timeout=20)  # Stripe's retry of the same event is recorded once
    assert recorded["event_type"] == "invoice.paid"
    tampered = body.replace(b'"amount_paid": 900', b'"amount_paid": 1')
    for _ in range(5):  # the core puts the integration in error after five refusals in a row
        refused = api.post(f"/v1/hooks/{integration_id}", content=tampered, headers=emulator.webhook_headers(body))
        assert refused.status_code == 401
    shown = api.get(f"/v1/integrations/{integration_id}", headers=tenant).json()["integration"]
    assert shown["status"] == "error"
    assert "Webhook signature verification failed — check settings.webhookSecret" in shown["error_message"]
    assert emulator.webhook_secret not in refused.text + json.dumps(shown)
    assert (
        api.post(f"/v1/hooks/{integration_id}", content=body, headers=emulator.webhook_headers(body)).status_code == 200
    )
    healed = api.get(f"/v1/integrations/{integration_id}", headers=tenant).json()["integration"]
    assert (healed["status"], healed["error_message"]) == ("connected", None)


# -- the emulator's own contract ----------------------------------------------------------------------


def test_the_emulator_answers_as_stripe_documents(fixed: StripeEmulator) -> None:
    fixed.add_events(5, start=NOW - 40 * DAY, spacing=DAY * 3)  # 40, 37, 34, 31 and 28 days old
    auth = {"Authorization": f"Bearer {fixed.api_key}"}
    answered = httpx.get(fixed.url + "/v1/events", headers=auth)
    listed = answered.json()
    assert listed["object"] == "list"
    assert listed["url"] == "/v1/events"
    assert listed["has_more"] is False
    assert len(listed["data"]) == 1  # only the last 30 days
    for limit in ("0", "101", "x"):
        answer = httpx.get(fixed.url + "/v1/events", params={"limit": limit}, headers=auth)
        assert answer.status_code == 400
        assert answer.json()["error"]["type"] == "invalid_request_error"
        assert answer.json()["error"]["param"] == "limit"
    bad = httpx.get(fixed.url + "/v1/balance", headers={"Authorization": "Bearer sk_test_abcdefghijkl1234"})
    assert bad.status_code == 401
    assert bad.json()["error"]["message"] == "Invalid API Key provided: sk_test_************1234"
    unknown = httpx.get(fixed.url + "/v1/nope", headers=auth)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "invalid_request_error"
    assert all(r.headers["request-id"].startswith("req_") for r in (answered, bad, unknown))


def test_the_emulator_control_paths_list_customers_and_add_or_send_events(emulator: StripeEmulator) -> None:
    httpx.post(
        emulator.url + "/v1/customers",
        data={"email": "ada@example.com"},
        headers={"Authorization": f"Bearer {emulator.api_key}"},
    )
    customers = httpx.get(emulator.url + "/_emulator/customers").json()["customers"]
    assert [c["email"] for c in customers] == ["ada@example.com"]
    with EchoSink() as sink:
        body = {"type": "invoice.paid", "object": {"id": "in_1", "object": "invoice"}, "webhook_url": sink.url}
        answer = httpx.post(emulator.url + "/_emulator/events", json=body).json()
    assert answer["webhook_status"] == 200
    assert emulator.get_event(answer["event"]["id"]) == answer["event"]
    (seen,) = sink.received
    assert json.loads(seen.body) == answer["event"]
    assert seen.headers["stripe-signature"].startswith("t=")
    assert httpx.post(emulator.url + "/_emulator/events", json={"nope": 1}).status_code == 400
