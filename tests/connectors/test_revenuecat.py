"""The RevenueCat connector against its emulator, over real HTTP; the sync also through the core's pipeline.

Decisions these tests pin down (see plugins/revenuecat):

* no idempotency key is sent: RevenueCat takes one only on virtual-currency POSTs, and the connector only
  reads;
* webhooks are unsigned: verification is the configured Authorization value alone, so a changed body
  cannot be detected and there is no timestamp to find a stale one; a replay or retry carries the same
  ``event.id``, which the core records once;
* with no ``webhookAuthorization`` configured every webhook is refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from interlink.connector import ConnectorContext, PermanentError, TransientError, WebhookRequest
from interlink.http import recording_client
from interlink.pipeline.sync import run_sync
from interlink.plugins.revenuecat import RevenueCatConnector
from interlink.runtime import Runtime
from interlink.testing.emulators.revenuecat import RevenueCatEmulator
from tests.sink import Sink, running_sink
from tests.sync_helpers import Client, integration, published_per_record, run, trigger

KEY = RevenueCatEmulator.default_api_key
HOOK_AUTH = "Bearer rc-hook-value-9f8e7d6c5b4a"


@pytest.fixture
def emulator() -> Iterator[RevenueCatEmulator]:
    with RevenueCatEmulator(webhook_secret=HOOK_AUTH) as emu:
        yield emu


def settings(emu: RevenueCatEmulator, **extra: Any) -> dict[str, Any]:
    return {"apiKey": KEY, "projectId": emu.project_id, "baseUrl": emu.url, "webhookAuthorization": HOOK_AUTH, **extra}


def context(values: Mapping[str, Any], state: Mapping[str, Any] | None = None, now: Any = None) -> ConnectorContext:
    secrets = [str(values[k]) for k in ("apiKey", "webhookAuthorization") if values.get(k)]
    ctx = ConnectorContext(
        integration_id="int_test",
        settings=dict(values),
        http=recording_client(secrets=secrets),
        logger=logging.getLogger("interlink.connector.revenuecat"),
        state=json.loads(json.dumps(dict(state or {}))),  # what the store hands back
    )
    if now is not None:
        ctx.now = now
    return ctx


@dataclass
class Run:
    """What a sync yielded: records in order, and after how many records each checkpoint came."""

    records: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.records]


def sync(
    ctx: ConnectorContext,
    connector: RevenueCatConnector | None = None,
    *,
    stop_after: int | None = None,
    into: Run | None = None,
) -> Run:
    """Consume a sync (into ``into`` when given, so a raising one leaves what it yielded); ``stop_after``
    checkpoints, stop there as a killed worker would."""
    result = into if into is not None else Run()
    for item in (connector or RevenueCatConnector()).sync(ctx):
        if set(item) == {"checkpoint"}:
            result.checkpoints.append((len(result.records), item["checkpoint"]))
            if stop_after is not None and len(result.checkpoints) == stop_after:
                break
        else:
            result.records.append(item)
    return result


def seed(emu: RevenueCatEmulator, customers: int = 45) -> dict[str, tuple[int, int]]:
    """``customers`` customers, with 0 to 24 subscriptions (24 spans two pages of 20) and 0 to 2 purchases."""
    made = {}
    for i in range(customers):
        subs, purchases = (i % 4) * 8, i % 3
        made[emu.add_customer(subscriptions=subs, purchases=purchases, email=f"u{i}@example.com")] = (subs, purchases)
    return made


def expected_ids(emu: RevenueCatEmulator, made: Mapping[str, tuple[int, int]]) -> set[str]:
    ids = {f"customer:{cid}" for cid in made}
    for cid in made:
        ids |= {f"{s['id']}:{s['current_period_starts_at']}" for s in emu.subscriptions_of(cid)}
        ids |= {p["id"] for p in emu.purchases_of(cid)}
    return ids


def when(iso: str) -> int:
    """Milliseconds since the epoch of an envelope's ISO time."""
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


def requests_to(emu: RevenueCatEmulator, suffix: str) -> list[str]:
    return [r.path for r in emu.received if r.path.split("?")[0].endswith(suffix)]


# -- check --


def test_check_lists_projects_with_the_bearer_key(emulator: RevenueCatEmulator) -> None:
    result = RevenueCatConnector().check(context(settings(emulator)))
    assert result.ok
    assert emulator.received[-1].path == "/v2/projects"
    assert emulator.received[-1].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("key", ["sk_wrong_key_123456", "sk_forbidden_0000"])
def test_bad_credentials_name_the_api_key_setting(emulator: RevenueCatEmulator, key: str) -> None:
    emulator.forbidden_keys.add("sk_forbidden_0000")
    with pytest.raises(PermanentError) as caught:
        RevenueCatConnector().check(context(settings(emulator, apiKey=key)))
    assert caught.value.setting == "apiKey"
    assert "settings.apiKey" in caught.value.message
    assert key not in caught.value.message
    if key == "sk_wrong_key_123456":
        assert caught.value.message.startswith("Invalid API key — update settings.apiKey")


def test_a_project_the_key_cannot_see_names_the_project_setting(emulator: RevenueCatEmulator) -> None:
    with pytest.raises(PermanentError) as caught:
        RevenueCatConnector().check(context(settings(emulator, projectId="proj_other")))
    assert caught.value.setting == "projectId"
    with pytest.raises(PermanentError) as synced:
        sync(context(settings(emulator, projectId="proj_other")))
    assert synced.value.setting == "projectId"


def test_a_base_url_ending_in_v2_is_the_same_api(emulator: RevenueCatEmulator) -> None:
    assert RevenueCatConnector().check(context(settings(emulator, baseUrl=emulator.url + "/v2/"))).ok
    assert emulator.received[-1].path == "/v2/projects"


def test_a_base_url_leading_elsewhere_names_the_base_url_setting(emulator: RevenueCatEmulator) -> None:
    with pytest.raises(PermanentError) as caught:
        RevenueCatConnector().check(context(settings(emulator, baseUrl=emulator.url + "/proxy")))
    assert caught.value.setting == "baseUrl"


# -- sync --


def test_sync_pages_every_customer_and_each_ones_subscriptions_and_purchases(emulator: RevenueCatEmulator) -> None:
    made = seed(emulator, 45)
    result = sync(context(settings(emulator)))
    assert sorted(result.ids) == sorted(expected_ids(emulator, made))  # every record once
    assert len(result.ids) == len(set(result.ids)) == 45 + sum(s + p for s, p in made.values())
    # three customer pages of 20, 20 and 5, the next two asked for with the cursor of next_page
    pages = requests_to(emulator, "/customers")
    assert len(pages) == 3
    assert "starting_after" not in pages[0]
    assert all("starting_after=" in p for p in pages[1:])
    # a customer with 24 subscriptions took two pages of them
    big = next(cid for cid, (subs, _) in made.items() if subs == 24)
    assert len(requests_to(emulator, f"/customers/{big}/subscriptions")) == 2
    # reads only: no idempotency key (RevenueCat takes one only on virtual-currency POSTs)
    assert {r.method for r in emulator.received} == {"GET"}
    assert not any("idempotency-key" in r.headers for r in emulator.received)
    # one checkpoint per customer (its id, the API's own cursor), then {} for the next walk
    assert [state for _, state in result.checkpoints][:-1] == [{"starting_after": cid} for cid in sorted(made)]
    assert result.checkpoints[-1] == (len(result.records), {})


def test_records_are_inbound_envelopes_about_the_customer(emulator: RevenueCatEmulator) -> None:
    cid = emulator.add_customer("user:42/a b", subscriptions=1, purchases=1, email="a@example.com")
    records = sync(context(settings(emulator))).records
    customer, subscription, purchase = records
    assert customer["type"] == "customer"
    assert customer["id"] == f"customer:{cid}"
    assert subscription["type"] == "subscription"
    assert purchase["type"] == "purchase"
    for record in records:
        assert record["source"] == "revenuecat"
        assert record["subject"] == {"id": cid, "external_id": cid}  # lists carry no attributes: no e-mail
    sub = emulator.subscriptions_of(cid)[0]
    assert subscription["id"] == f"{sub['id']}:{sub['current_period_starts_at']}"
    assert when(subscription["occurred_at"]) == sub["current_period_starts_at"]
    assert subscription["data"]["product_id"] == sub["product_id"]
    assert subscription["data"]["revenue_usd"] == 9.99
    assert subscription["data"]["currency"] == "USD"
    assert when(subscription["data"]["expiration_at"]) == sub["current_period_ends_at"]
    assert subscription["raw"] == sub
    assert purchase["data"]["store"] == "play_store"


def test_a_new_billing_period_is_a_new_record_and_an_old_one_is_not(emulator: RevenueCatEmulator) -> None:
    cid = emulator.add_customer(subscriptions=1)
    first = sync(context(settings(emulator))).ids
    emulator.subscriptions_of(cid)[0]["current_period_starts_at"] += 30 * 86_400_000
    second = sync(context(settings(emulator))).ids
    assert first[0] == second[0]  # the customer: the core drops the repeat
    assert first[1] != second[1]  # the renewal: a new record


@pytest.mark.parametrize("cut", [1, 12, 24])
def test_resuming_from_a_checkpoint_gives_the_union_of_a_full_run(emulator: RevenueCatEmulator, cut: int) -> None:
    made = seed(emulator, 25)
    values = settings(emulator, pageSize=10)  # three pages of customers, so cuts fall mid-page and at its end
    full = set(sync(context(values)).ids)
    killed = sync(context(values), stop_after=cut)
    saved_count, state = killed.checkpoints[-1]
    saved = set(killed.ids[:saved_count])  # the core writes records and their checkpoint together
    emulator.received.clear()
    resumed = sync(context(values, state=state))
    assert saved | set(resumed.ids) == full == expected_ids(emulator, made)
    assert not saved & set(resumed.ids)  # resumed after the last customer done, not from the start
    assert f"starting_after={sorted(made)[cut - 1]}" in requests_to(emulator, "/customers")[0]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, {"type": "resource_missing", "message": "Customer not found", "retryable": False}),
        (400, {"type": "parameter_error", "param": "starting_after", "message": "unknown", "retryable": False}),
    ],
)
def test_a_refused_saved_cursor_walks_again_from_the_first_customer(
    emulator: RevenueCatEmulator, status: int, body: dict[str, Any]
) -> None:
    made = seed(emulator, 5)
    emulator.fail_next(1, status, body=body, when=lambda r: r.arg("starting_after") == "user-gone")
    resumed = sync(context(settings(emulator), state={"starting_after": "user-gone"}))
    assert set(resumed.ids) == expected_ids(emulator, made)


def test_429_is_transient_with_retry_after_then_the_sync_resumes(emulator: RevenueCatEmulator) -> None:
    made = seed(emulator, 12)
    full = expected_ids(emulator, made)
    victim = sorted(made)[5]
    emulator.fail_next(1, 429, headers={"Retry-After": "7"}, when=lambda r: victim in r.path)
    done = Run()
    with pytest.raises(TransientError) as caught:
        sync(context(settings(emulator)), into=done)
    assert caught.value.delay == 7
    count, state = done.checkpoints[-1]
    assert state == {"starting_after": sorted(made)[4]}
    resumed = sync(context(settings(emulator), state=state))
    assert set(done.ids[:count]) | set(resumed.ids) == full


def test_429_without_retry_after_takes_the_bodys_backoff_ms(emulator: RevenueCatEmulator) -> None:
    emulator.add_customer(subscriptions=1)
    body = {"type": "rate_limit_error", "message": "Rate limit exceeded", "retryable": True, "backoff_ms": 2500}
    emulator.fail_next(1, 429, body=body)
    with pytest.raises(TransientError) as caught:
        sync(context(settings(emulator)))
    assert caught.value.delay == 2.5
    assert len(sync(context(settings(emulator))).ids) == 2  # and then it works


@pytest.mark.parametrize(
    ("status", "body", "error", "delay"),
    [
        (503, {"type": "server_error", "message": "down", "retryable": True, "backoff_ms": 1000}, TransientError, 1.0),
        (500, None, TransientError, None),
        (
            423,
            {"type": "resource_locked_error", "message": "busy", "retryable": True, "backoff_ms": 300},
            TransientError,
            0.3,
        ),
        (400, {"type": "parameter_error", "message": "bad", "retryable": False}, PermanentError, None),
        (422, {"type": "unprocessable_entity_error", "message": "no", "retryable": False}, PermanentError, None),
    ],
)
def test_5xx_and_retryable_errors_are_transient_other_4xx_permanent(
    emulator: RevenueCatEmulator, status: int, body: Any, error: type[Exception], delay: float | None
) -> None:
    emulator.add_customer(subscriptions=1)
    emulator.fail_next(1, status, body=body, when=lambda r: r.path.endswith("/subscriptions"))
    with pytest.raises(error) as caught:
        sync(context(settings(emulator)))
    if isinstance(caught.value, TransientError):
        assert caught.value.delay == delay
    else:
        assert isinstance(caught.value, PermanentError)
        assert caught.value.setting is None
        assert f"HTTP {status}" in caught.value.message


def test_a_customer_deleted_during_the_sync_is_skipped(emulator: RevenueCatEmulator) -> None:
    gone = emulator.add_customer(subscriptions=2)
    kept = emulator.add_customer(subscriptions=2)
    emulator.fail_next(
        1,
        404,
        body={"type": "resource_missing", "message": "Customer not found", "retryable": False},
        when=lambda r: gone in r.path and r.path.endswith("/subscriptions"),
    )
    result = sync(context(settings(emulator)))
    assert f"customer:{kept}" in result.ids
    assert sum(1 for r in result.records if r["subject"]["id"] == kept) == 3


# -- rate limits --


class FakeClock:
    """One clock for the emulator's rate-limit periods and the connector's pacing; sleeping moves it."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_the_emulator_counts_per_domain_and_answers_429_with_retry_after_and_backoff_ms() -> None:
    clock = FakeClock()
    with RevenueCatEmulator(clock=clock.monotonic) as emu, httpx.Client(base_url=emu.url) as http:
        emu.set_limit("customer_information", 3)
        auth = {"Authorization": f"Bearer {KEY}"}
        customers = f"/v2/projects/{emu.project_id}/customers"
        usage = [http.get(customers, headers=auth).headers["RevenueCat-Rate-Limit-Current-Usage"] for _ in range(3)]
        assert usage == ["1", "2", "3"]
        clock.t += 20
        over = http.get(customers, headers=auth)
        assert over.status_code == 429
        assert over.headers["Retry-After"] == "40"
        assert over.json() == {
            "object": "error",
            "type": "rate_limit_error",
            "message": "Rate limit exceeded",
            "retryable": True,
            "doc_url": "https://errors.rev.cat/rate-limit-error",
            "backoff_ms": 40000,
        }
        projects = http.get("/v2/projects", headers=auth)  # another domain, its own count
        assert projects.status_code == 200
        assert projects.headers["RevenueCat-Rate-Limit-Current-Limit"] == "60"
        clock.t += 40
        assert http.get(customers, headers=auth).headers["RevenueCat-Rate-Limit-Current-Usage"] == "1"
        unauthenticated = http.get(customers)
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["type"] == "authentication_error"


def test_the_sync_paces_itself_under_the_per_minute_limit() -> None:
    clock = FakeClock()

    class Paced(RevenueCatConnector):
        sleep = staticmethod(clock.sleep)

    with RevenueCatEmulator(clock=clock.monotonic) as emu:
        emu.set_limit("customer_information", 10)
        made = seed(emu, 15)
        result = sync(context(settings(emu), now=clock.now), Paced())  # ~40 requests at 10 a minute
        assert set(result.ids) == expected_ids(emu, made)  # no 429 on the way
        assert len(clock.slept) >= 3
        assert all(0 < s <= 60 for s in clock.slept)


def test_pacing_follows_the_usage_the_vendor_reports() -> None:
    clock = FakeClock()

    class Paced(RevenueCatConnector):
        sleep = staticmethod(clock.sleep)

    with RevenueCatEmulator(clock=clock.monotonic) as emu:
        emu.set_limit("customer_information", 10)
        emu.add_customer(subscriptions=1)
        emu.spend("customer_information", 8)  # another client of the same key used 8 of the 10
        result = sync(context(settings(emu), now=clock.now), Paced())
        assert len(result.ids) == 2
        assert clock.slept, "the connector went on although the vendor said the minute was nearly used up"


# -- webhooks --


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    with running_sink() as s:
        yield s


@pytest.fixture
def webhook(sink: Sink) -> Callable[..., WebhookRequest]:
    """Send an event as RevenueCat does; get the request as the core's hooks route hands it to the connector."""

    def send(emu: RevenueCatEmulator, event: Mapping[str, Any], **kwargs: Any) -> WebhookRequest:
        response = emu.send_webhook(sink.url("/v1/hooks/int_test"), event, **kwargs)
        assert response.status_code == 200
        got = sink.at("/v1/hooks/int_test")[-1]
        return WebhookRequest("POST", got.path, got.headers, got.body)

    return send


def test_a_webhook_with_the_configured_authorization_is_accepted(
    emulator: RevenueCatEmulator, webhook: Callable[..., WebhookRequest]
) -> None:
    request = webhook(emulator, emulator.webhook_event("RENEWAL", "user-7"))
    assert request.headers["authorization"] == HOOK_AUTH
    assert RevenueCatConnector().verify_webhook(context(settings(emulator)), request) is None


@pytest.mark.parametrize("sent", ["Bearer wrong-value", "", None, HOOK_AUTH + "x", HOOK_AUTH.removeprefix("Bearer ")])
def test_a_wrong_or_missing_authorization_is_refused_naming_the_setting(
    emulator: RevenueCatEmulator, webhook: Callable[..., WebhookRequest], sent: str | None
) -> None:
    request = webhook(emulator, emulator.webhook_event("RENEWAL", "user-7"), authorization=sent)
    with pytest.raises(PermanentError) as caught:
        RevenueCatConnector().verify_webhook(context(settings(emulator)), request)
    assert caught.value.setting == "webhookAuthorization"
    assert "settings.webhookAuthorization" in caught.value.message
    assert HOOK_AUTH not in caught.value.message


def test_without_a_configured_value_every_webhook_is_refused(
    emulator: RevenueCatEmulator, webhook: Callable[..., WebhookRequest]
) -> None:
    request = webhook(emulator, emulator.webhook_event("RENEWAL", "user-7"))
    values = {k: v for k, v in settings(emulator).items() if k != "webhookAuthorization"}
    with pytest.raises(PermanentError) as caught:
        RevenueCatConnector().verify_webhook(context(values), request)
    assert caught.value.setting == "webhookAuthorization"
    assert "set" in caught.value.message


def test_a_value_without_scheme_also_matches_it_sent_as_bearer(
    emulator: RevenueCatEmulator, webhook: Callable[..., WebhookRequest]
) -> None:
    request = webhook(emulator, emulator.webhook_event("TEST", "user-7"), authorization="Bearer plain-value-123")
    assert (
        RevenueCatConnector().verify_webhook(
            context(settings(emulator, webhookAuthorization="plain-value-123")), request
        )
        is None
    )


def test_unsigned_webhooks_cannot_detect_a_changed_body(
    emulator: RevenueCatEmulator, webhook: Callable[..., WebhookRequest]
) -> None:
    """Documents the limit: only the header is checked, so a body changed in transit still verifies."""
    request = webhook(emulator, emulator.webhook_event("RENEWAL", "user-7", price=9.99))
    tampered = WebhookRequest("POST", request.path, request.headers, request.body.replace(b"9.99", b"0.01"))
    assert RevenueCatConnector().verify_webhook(context(settings(emulator)), tampered) is None


def test_an_event_becomes_one_envelope_whose_id_is_the_event_id(
    emulator: RevenueCatEmulator, webhook: Callable[..., WebhookRequest]
) -> None:
    event = emulator.webhook_event(
        "RENEWAL",
        "user-7",
        event_timestamp_ms=1_700_000_000_123,
        expiration_at_ms=1_702_592_000_000,
        subscriber_attributes={"$email": {"value": "seven@example.com", "updated_at_ms": 1}},
    )
    request = webhook(emulator, event)
    result = RevenueCatConnector().handle_webhook(context(settings(emulator)), request)
    assert result.response_status == 200
    (envelope,) = result.events
    assert envelope["id"] == event["id"]
    assert envelope["type"] == "RENEWAL"
    assert envelope["source"] == "revenuecat"
    assert envelope["occurred_at"] == "2023-11-14T22:13:20.123000Z"
    assert envelope["subject"] == {"id": "user-7", "external_id": "user-7", "email": "seven@example.com"}
    assert envelope["data"]["product_id"] == "premium_monthly"
    assert envelope["data"]["price"] == 9.99
    assert envelope["data"]["currency"] == "USD"
    assert envelope["data"]["store"] == "APP_STORE"
    assert envelope["data"]["environment"] == "PRODUCTION"
    assert envelope["data"]["period_type"] == "NORMAL"
    assert envelope["data"]["expiration_at"] == "2023-12-14T22:13:20Z"
    assert envelope["raw"] == {"api_version": "1.0", "event": event}
    again = RevenueCatConnector().handle_webhook(context(settings(emulator)), webhook(emulator, event))
    assert again.events[0]["id"] == envelope["id"]  # a retry: the same id, recorded once by the core


def test_a_transfer_names_the_receiving_user() -> None:
    body = {
        "api_version": "1.0",
        "event": {"id": "E1", "type": "TRANSFER", "transferred_from": ["a"], "transferred_to": ["b"]},
    }
    request = WebhookRequest("POST", "/", {}, json.dumps(body).encode())
    (envelope,) = RevenueCatConnector().handle_webhook(context({}), request).events
    assert envelope["subject"] == {"id": "b", "external_id": "b"}
    assert envelope["data"]["transferred_from"] == ["a"]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"api_version": "1.0"}', b'{"event": {"type": "RENEWAL"}}'])
def test_a_body_that_is_not_a_revenuecat_event_is_a_permanent_error(body: bytes) -> None:
    with pytest.raises(PermanentError):
        RevenueCatConnector().handle_webhook(context({}), WebhookRequest("POST", "/", {}, body))


# -- through the core: the sync pipeline on SQLite and PostgreSQL --


def test_the_core_publishes_each_record_once_and_resumes_a_failed_run(
    runtime: Runtime,
    client: Client,
    auth: dict[str, str],
    emulator: RevenueCatEmulator,
) -> None:
    made = seed(emulator, 25)
    body = {"service": "revenuecat", "name": "RC", "settings": settings(emulator)}
    created = client.post("/v1/integrations", json=body, headers=auth)
    assert created.status_code == 201, created.text
    integration_id = created.json()["integration"]["id"]
    victim = sorted(made)[9]
    emulator.fail_next(
        1,
        400,
        body={"type": "parameter_error", "message": "injected", "retryable": False},
        when=lambda r: victim in r.path and r.path.endswith("/purchases"),
    )
    first = trigger(client, auth, integration_id)
    run_sync(runtime, first)
    failed = run(client, auth, integration_id, first)
    assert failed["status"] == "failed", failed
    assert "HTTP 400" in failed["error"]
    assert integration(client, auth, integration_id)["status"] == "error"
    second = trigger(client, auth, integration_id)
    run_sync(runtime, second)
    done = run(client, auth, integration_id, second)
    assert done["status"] == "succeeded", done
    assert integration(client, auth, integration_id)["status"] == "connected"
    published = published_per_record(runtime, integration_id)
    assert set(published) == expected_ids(emulator, made)
    assert set(published.values()) == {1}  # no gap, no duplicate
    resumed_from = [r.path for r in emulator.received if "/customers?" in r.path]
    assert any(f"starting_after={sorted(made)[8]}" in p for p in resumed_from)
