"""Stripe's official SDK (stripe-python) against ``StripeEmulator``: it behaves as it would against Stripe.

If the SDK can authenticate, page, replay idempotent requests and raise its own error classes here,
the emulator speaks Stripe's protocol, and the connector's tests against it mean something.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import stripe

from interlink.testing import EchoSink
from interlink.testing.emulators.stripe import StripeEmulator


@pytest.fixture
def emulator() -> Iterator[StripeEmulator]:
    with StripeEmulator() as emu:
        yield emu


def sdk(emulator: StripeEmulator, api_key: str | None = None) -> stripe.StripeClient:
    """A client of the emulator; no retries, so each error surfaces at once."""
    return stripe.StripeClient(api_key or emulator.api_key, base_addresses={"api": emulator.url}, max_network_retries=0)


def test_the_sdk_authenticates_and_reads_the_balance_and_the_account(emulator: StripeEmulator) -> None:
    client = sdk(emulator)
    balance = client.v1.balance.retrieve()
    assert balance.object == "balance"
    assert balance.available[0].currency == "usd"
    seen = emulator.received[-1]
    assert seen.headers["authorization"] == f"Bearer {emulator.api_key}"
    assert balance.last_response.headers["Stripe-Version"] == seen.headers["stripe-version"]  # the one it pins
    assert balance.last_response.request_id.startswith("req_")
    assert client.v1.accounts.retrieve_current().id.startswith("acct_")


def test_the_sdk_lists_events_and_auto_pages_to_the_end(emulator: StripeEmulator) -> None:
    emulator.add_events(250, ("invoice.paid", "charge.succeeded", "customer.subscription.updated"))
    client = sdk(emulator)
    events = list(client.v1.events.list({"limit": 100}).auto_paging_iter())
    assert [e.id for e in events] == list(reversed(list(emulator.event_ids())))  # newest first, each once
    assert all(isinstance(e, stripe.Event) for e in events)
    assert sum(1 for r in emulator.received if r.path.startswith("/v1/events")) == 3
    invoices = list(client.v1.events.list({"limit": 100, "type": "invoice.*"}).auto_paging_iter())
    assert len(invoices) == 84
    assert {e.type for e in invoices} == {"invoice.paid"}
    since = events[9].created
    recent = list(client.v1.events.list({"limit": 3, "created": {"gte": since}}).auto_paging_iter())
    assert [e.id for e in recent] == [e.id for e in events[:10]]


def test_an_idempotent_post_is_replayed_and_a_reused_key_is_refused(emulator: StripeEmulator) -> None:
    client = sdk(emulator)
    params: stripe.params.CustomerCreateParams = {"email": "ada@example.com", "metadata": {"external_id": "user-42"}}
    first = client.v1.customers.create(params, {"idempotency_key": "evt_01JPLATFORM0001"})
    again = client.v1.customers.create(params, {"idempotency_key": "evt_01JPLATFORM0001"})
    assert again.id == first.id
    assert len(emulator.customers) == 1
    assert client.v1.customers.retrieve(first.id).metadata["external_id"] == "user-42"
    found = client.v1.customers.search({"query": "metadata['external_id']:'user-42'"})
    assert [c.id for c in found.data] == [first.id]
    updated = client.v1.customers.update(first.id, {"name": "Ada Lovelace"})
    assert updated.name == "Ada Lovelace"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "other@example.com"}, {"idempotency_key": "evt_01JPLATFORM0001"})


def test_the_sdk_raises_its_own_error_classes(emulator: StripeEmulator) -> None:
    with pytest.raises(stripe.AuthenticationError) as auth:
        sdk(emulator, "sk_test_wrong_0123456789abcdef").v1.balance.retrieve()
    assert auth.value.http_status == 401
    assert "0123456789abcdef" not in str(auth.value)
    assert auth.value.request_id is not None
    client = sdk(emulator)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_missing")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as too_many:
        client.v1.events.list({"limit": 101})
    assert (too_many.value.http_status, too_many.value.param) == (400, "limit")
    emulator.fail_next(1, 429)
    with pytest.raises(stripe.RateLimitError):
        client.v1.balance.retrieve()
    emulator.fail_next(1, 500)
    with pytest.raises(stripe.APIError):
        client.v1.balance.retrieve()


def test_construct_event_accepts_what_the_emulator_signs(emulator: StripeEmulator) -> None:
    event = emulator.event("invoice.paid", {"id": "in_1", "object": "invoice", "amount_paid": 1999})
    with EchoSink() as sink:
        emulator.send_webhook(sink.url + "/hook", event)
    (seen,) = sink.received
    parsed = stripe.Webhook.construct_event(seen.body, seen.headers["stripe-signature"], emulator.webhook_secret)
    assert (parsed.id, parsed.type) == (event["id"], "invoice.paid")
    body = json.dumps(event).encode()
    assert stripe.Webhook.construct_event(body, emulator.sign(body), emulator.webhook_secret).id == event["id"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, emulator.sign(body, secret="whsec_other"), emulator.webhook_secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, emulator.sign(body, timestamp=1), emulator.webhook_secret)
