"""The Adapty connector against its emulator, over real HTTP; deliveries also through the core's pipeline.

Decisions these tests pin down (see plugins/adapty):

* idempotency: Adapty takes no idempotency key, but keys transactions on ``store_transaction_id``; the
  connector sends the platform's transaction id, else the event's idempotency key, so a retried delivery
  updates the one transaction instead of recording a second;
* webhooks are unsigned: verification is the configured Authorization value alone, compared exactly; a
  changed body cannot be detected and there is no timestamp to find a stale request; a replay carries the
  same ``profile_event_id``, which the core records once;
* the ``adapty_check`` handshake needs the Authorization value too, and is answered exactly;
* with no ``webhookAuthorization`` configured every request is refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from interlink.config import Config
from interlink.connector import ConnectorContext, PermanentError, TransientError, WebhookRequest, WebhookResult
from interlink.http import recording_client
from interlink.plugins.adapty import PROBE_USER, AdaptyConnector
from interlink.runtime import Runtime
from interlink.testing._server import BackgroundServer, QuietHandler
from interlink.testing.emulators.adapty import AdaptyEmulator
from tests.pipeline_helpers import all_in, publish, wait_for
from tests.sync_helpers import Client

KEY = AdaptyEmulator.default_api_key
HOOK_AUTH = "adapty-hook-value-4b3a2918f7e6"
SET = "/api/v2/server-side-api/purchase/set/transaction/"
REVOKE = "/api/v2/server-side-api/purchase/profile/revoke/access-level/"


@pytest.fixture
def emulator() -> Iterator[AdaptyEmulator]:
    with AdaptyEmulator(webhook_secret=HOOK_AUTH) as emu:
        yield emu


def settings(emu: AdaptyEmulator, **extra: Any) -> dict[str, Any]:
    return {"apiKey": KEY, "baseUrl": emu.url, "webhookAuthorization": HOOK_AUTH, **extra}


def context(values: Mapping[str, Any]) -> ConnectorContext:
    secrets = [str(values[k]) for k in ("apiKey", "webhookAuthorization") if values.get(k)]
    return ConnectorContext(
        integration_id="int_test",
        settings=dict(values),
        http=recording_client(secrets=secrets),
        logger=logging.getLogger("interlink.connector.adapty"),
    )


def purchase(event_type: str = "subscription.created", event_id: str = "evt_01", **data: Any) -> dict[str, Any]:
    """A platform event about a purchase made outside the app stores."""
    fields = {
        "customer_user_id": "user-7",
        "product_id": "premium.monthly",
        "price": 9.99,
        "currency": "usd",
        "country": "de",
        "subscription_id": "sub_77",
        "purchased_at": "2026-01-05T10:00:00Z",
        "expires_at": 1_770_285_600,  # unix seconds: 2026-02-05T10:00:00Z
        **data,
    }
    return {"id": event_id, "type": event_type, "occurred_at": "2026-01-05T10:00:01Z", "data": fields}


# -- check --


def test_check_with_a_good_key_is_ok_on_adaptys_profile_404(emulator: AdaptyEmulator) -> None:
    result = AdaptyConnector().check(context(settings(emulator)))
    assert result.ok
    [seen] = emulator.received
    assert seen.path == "/api/v2/server-side-api/profile/"
    assert seen.headers["authorization"] == f"Api-Key {KEY}"
    assert seen.headers["adapty-customer-user-id"] == PROBE_USER


def test_check_is_ok_when_the_probe_profile_exists(emulator: AdaptyEmulator) -> None:
    emulator.add_profile(PROBE_USER)
    assert AdaptyConnector().check(context(settings(emulator))).ok


@pytest.mark.parametrize("key", ["secret_live_wrong.key", "Api-Key nope"])
def test_a_bad_key_names_the_api_key_setting(emulator: AdaptyEmulator, key: str) -> None:
    with pytest.raises(PermanentError) as caught:
        AdaptyConnector().check(context(settings(emulator, apiKey=key)))
    assert caught.value.setting == "apiKey"
    assert "Invalid API key — update settings.apiKey" in caught.value.message
    assert key not in caught.value.message


def test_a_key_pasted_with_its_scheme_and_a_base_url_with_the_api_prefix_work(emulator: AdaptyEmulator) -> None:
    values = settings(emulator, apiKey=f"Api-Key {KEY}", baseUrl=emulator.url + "/api/v2/server-side-api/")
    assert AdaptyConnector().check(context(values)).ok
    assert emulator.received[-1].path == "/api/v2/server-side-api/profile/"


def test_a_404_that_is_not_adaptys_names_the_base_url() -> None:
    class NotFound(QuietHandler):
        def handle_any(self) -> None:
            self.answer(404, [("content-type", "text/html")], b"<html>Not Found</html>")

    elsewhere = BackgroundServer(NotFound)
    elsewhere.start()
    try:
        with pytest.raises(PermanentError) as caught:
            AdaptyConnector().check(context({"apiKey": KEY, "baseUrl": elsewhere.url}))
    finally:
        elsewhere.stop()
    assert caught.value.setting == "baseUrl"


# -- deliver --


def test_subscription_created_sets_a_transaction_on_the_profile(emulator: AdaptyEmulator) -> None:
    pid = emulator.add_profile("user-7")
    AdaptyConnector().deliver(context(settings(emulator)), purchase(), "evt_01")
    [write] = emulator.writes
    assert write["path"] == SET
    assert write["profile_id"] == pid
    assert write["headers"] == {"adapty-customer-user-id": "user-7"}
    assert write["body"] == {
        "purchase_type": "subscription",
        "store": "web",
        "environment": "Production",
        "store_product_id": "premium.monthly",
        "store_transaction_id": "evt_01",
        "store_original_transaction_id": "sub_77",
        "price": {"country": "DE", "currency": "USD", "value": 9.99},
        "purchased_at": "2026-01-05T10:00:00.000000+0000",
        "originally_purchased_at": "2026-01-05T10:00:00.000000+0000",
        "expires_at": "2026-02-05T10:00:00.000000+0000",
        "renew_status": True,
    }
    [level] = emulator.profiles[pid]["access_levels"]
    assert level["access_level_id"] == "premium"


def test_a_retried_delivery_updates_one_transaction_instead_of_adding_another(emulator: AdaptyEmulator) -> None:
    emulator.add_profile("user-7")
    event = purchase()
    emulator.fail_next(1, 503)
    with pytest.raises(TransientError):
        AdaptyConnector().deliver(context(settings(emulator)), event, "evt_01")
    AdaptyConnector().deliver(context(settings(emulator)), event, "evt_01")
    AdaptyConnector().deliver(context(settings(emulator)), event, "evt_01")  # delivered twice (at-least-once)
    sent = [json.loads(r.body)["store_transaction_id"] for r in emulator.received]
    assert sent == ["evt_01", "evt_01", "evt_01"]  # the same key on every attempt
    assert list(emulator.transactions) == [(emulator.add_profile("user-7"), "evt_01")]


def test_the_platforms_own_transaction_id_is_preferred(emulator: AdaptyEmulator) -> None:
    emulator.add_profile("user-7")
    for key in ("evt_a", "evt_b"):  # two events about one platform transaction
        AdaptyConnector().deliver(context(settings(emulator)), purchase(transaction_id="txn_1"), key)
    assert [t for _, t in emulator.transactions] == ["txn_1"]


def test_subscription_updated_and_a_one_time_purchase(emulator: AdaptyEmulator) -> None:
    emulator.add_profile("user-7")
    connector = AdaptyConnector()
    connector.deliver(
        context(settings(emulator, store="paddle")),
        purchase("subscription.updated", cancel_at_period_end=True, environment="sandbox"),
        "evt_02",
    )
    connector.deliver(
        context(settings(emulator)),
        purchase(purchase_type="one_time_purchase", product_id="lifetime", expires_at=None),
        "evt_03",
    )
    updated, one_time = (w["body"] for w in emulator.writes)
    assert updated["store"] == "paddle"
    assert updated["environment"] == "Sandbox"
    assert updated["renew_status"] is False
    assert one_time["purchase_type"] == "one_time_purchase"
    assert "expires_at" not in one_time
    assert "renew_status" not in one_time


def test_subscription_cancelled_revokes_the_access_level(emulator: AdaptyEmulator) -> None:
    pid = emulator.add_profile("user-7")
    connector = AdaptyConnector()
    connector.deliver(context(settings(emulator)), purchase(), "evt_01")
    connector.deliver(
        context(settings(emulator)),
        {"id": "evt_09", "type": "subscription.cancelled", "data": {"customer_user_id": "user-7"}},
        "evt_09",
    )
    assert emulator.writes[-1]["path"] == REVOKE
    assert emulator.writes[-1]["body"] == {"access_level_id": "premium"}
    assert emulator.profiles[pid]["access_levels"] == []
    at_period_end = {"profile_id": pid, "access_level_id": "vip", "expires_at": "2026-02-05T10:00:00Z"}
    connector.deliver(
        context(settings(emulator, accessLevelId="gold")),
        {"id": "evt_10", "type": "subscription.cancelled", "data": at_period_end},
        "evt_10",
    )
    assert emulator.writes[-1]["headers"] == {"adapty-profile-id": pid}
    assert emulator.writes[-1]["body"] == {"access_level_id": "vip", "revoke_at": "2026-02-05T10:00:00.000000+0000"}


def test_an_inbound_envelope_from_another_source_is_delivered(emulator: AdaptyEmulator) -> None:
    emulator.add_profile("user-7")
    envelope = {
        "id": "sub_1Q",
        "type": "customer.subscription.created",
        "occurred_at": "2026-01-05T10:00:00Z",
        "source": "stripe",
        "subject": {"id": "cus_1", "external_id": "user-7", "email": "a@example.com"},
        "data": {"product_id": "premium.monthly", "price": 9.99, "currency": "EUR", "country": "FR", "expires_at": 0},
        "raw": {},
    }
    event = {"id": "evt_05", "type": "subscription.created", "occurred_at": "2026-01-05T10:00:01Z", "data": envelope}
    AdaptyConnector().deliver(context(settings(emulator)), event, "evt_05")
    [write] = emulator.writes
    assert write["headers"] == {"adapty-customer-user-id": "user-7"}
    assert write["body"]["price"] == {"country": "FR", "currency": "EUR", "value": 9.99}
    assert write["body"]["purchased_at"] == "2026-01-05T10:00:01.000000+0000"


@pytest.mark.parametrize(
    ("event", "named"),
    [
        (purchase(customer_user_id=None), "customer_user_id"),
        (purchase(product_id=None, price="9.99"), "data.product_id"),
        (purchase(expires_at=None), "data.expires_at"),
        (purchase(purchased_at="next tuesday"), "data.purchased_at"),
        (purchase(customer_user_id="ünïcode"), "data.customer_user_id"),
        (purchase("order.created"), "subscription.created"),
    ],
)
def test_an_event_adapty_cannot_take_fails_permanently_before_any_request(
    emulator: AdaptyEmulator, event: dict[str, Any], named: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        AdaptyConnector().deliver(context(settings(emulator)), event, "evt_01")
    assert named in caught.value.message
    assert emulator.received == []


def test_an_unknown_profile_is_permanent_and_says_so(emulator: AdaptyEmulator) -> None:
    with pytest.raises(PermanentError) as caught:
        AdaptyConnector().deliver(context(settings(emulator)), purchase(customer_user_id="nobody"), "evt_01")
    assert "no profile with customer-user-id 'nobody'" in caught.value.message


def test_429_is_transient_with_retry_after_then_the_delivery_succeeds(emulator: AdaptyEmulator) -> None:
    emulator.add_profile("user-7")
    emulator.fail_next(1, 429, headers={"Retry-After": "7"})
    with pytest.raises(TransientError) as caught:
        AdaptyConnector().deliver(context(settings(emulator)), purchase(), "evt_01")
    assert caught.value.delay == 7
    assert emulator.transactions == {}
    AdaptyConnector().deliver(context(settings(emulator)), purchase(), "evt_01")
    assert len(emulator.transactions) == 1


def test_the_emulators_rate_limit_answers_429_with_retry_after(emulator: AdaptyEmulator) -> None:
    emulator.add_profile("user-7")
    emulator.limit_rate(1, per_seconds=60)
    AdaptyConnector().deliver(context(settings(emulator)), purchase(), "evt_01")
    with pytest.raises(TransientError) as caught:
        AdaptyConnector().deliver(context(settings(emulator)), purchase(), "evt_02")
    assert caught.value.delay is not None
    assert 1 <= caught.value.delay <= 60


@pytest.mark.parametrize(("status", "error"), [(500, TransientError), (502, TransientError), (503, TransientError)])
def test_5xx_is_transient(emulator: AdaptyEmulator, status: int, error: type[Exception]) -> None:
    emulator.add_profile("user-7")
    emulator.fail_next(1, status)
    with pytest.raises(error):
        AdaptyConnector().deliver(context(settings(emulator)), purchase(), "evt_01")


def test_adaptys_validation_error_is_permanent(emulator: AdaptyEmulator) -> None:
    emulator.add_profile("user-7")
    with pytest.raises(PermanentError) as caught:
        AdaptyConnector().deliver(context(settings(emulator)), purchase(transaction_id="t" * 51), "evt_01")
    assert "HTTP 400" in caught.value.message
    assert "store_transaction_id" in caught.value.message


# -- webhooks: a stand-in for the core's hooks route, which calls verify_webhook while the vendor waits --


class HookEndpoint:
    """Answers as the core does: verified → 200 (or the connector's own answer), refused → 401."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.requests: list[WebhookRequest] = []
        self.refusals: list[PermanentError] = []
        endpoint = self

        class Handler(QuietHandler):
            def handle_any(self) -> None:
                body = self.read_body()
                request = WebhookRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                endpoint.requests.append(request)
                try:
                    result = AdaptyConnector().verify_webhook(context(values), request)
                except PermanentError as exc:
                    endpoint.refusals.append(exc)
                    status, answer = 401, {"detail": exc.message}
                else:
                    status, answer = (200, {"received": True}) if result is None else _answer(result)
                self.answer(status, [("content-type", "application/json")], json.dumps(answer).encode())

        self._server = BackgroundServer(Handler)
        self.url = self._server.url + "/v1/hooks/int_test"

    def __enter__(self) -> HookEndpoint:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


def _answer(result: WebhookResult) -> tuple[int, Any]:
    return result.response_status, result.response_body


@pytest.fixture
def endpoint(emulator: AdaptyEmulator) -> Iterator[HookEndpoint]:
    with HookEndpoint(settings(emulator)) as found:
        yield found


def test_the_handshake_is_answered_exactly_and_stores_nothing(emulator: AdaptyEmulator, endpoint: HookEndpoint) -> None:
    assert emulator.send_handshake(endpoint.url)
    assert emulator.last_handshake is not None
    assert emulator.last_handshake.status_code == 200
    token = json.loads(endpoint.requests[0].body)["adapty_check"]
    assert emulator.last_handshake.json() == {"adapty_check_response": token}
    result = AdaptyConnector().verify_webhook(context(settings(emulator)), endpoint.requests[0])
    assert isinstance(result, WebhookResult)
    assert result.events == []


@pytest.mark.parametrize("sent", ["wrong-value", None, f"Bearer {HOOK_AUTH}"])
def test_the_handshake_needs_the_authorization_value(
    emulator: AdaptyEmulator, endpoint: HookEndpoint, sent: str | None
) -> None:
    assert not emulator.send_handshake(endpoint.url, authorization=sent)
    assert emulator.last_handshake is not None
    assert emulator.last_handshake.status_code == 401
    assert endpoint.refusals[0].setting == "webhookAuthorization"


def test_an_event_with_the_configured_value_is_accepted(emulator: AdaptyEmulator, endpoint: HookEndpoint) -> None:
    response = emulator.send_webhook(endpoint.url, emulator.webhook_event("subscription_renewed", "user-7"))
    assert response.status_code == 200
    assert response.json() == {"received": True}
    assert endpoint.requests[0].headers["authorization"] == HOOK_AUTH


@pytest.mark.parametrize("sent", ["wrong-value", None, "", HOOK_AUTH.upper(), HOOK_AUTH[:-1]])
def test_a_wrong_or_missing_value_is_refused_naming_the_setting(
    emulator: AdaptyEmulator, endpoint: HookEndpoint, sent: str | None
) -> None:
    event = emulator.webhook_event("subscription_renewed", "user-7")
    assert emulator.send_webhook(endpoint.url, event, authorization=sent).status_code == 401
    [refusal] = endpoint.refusals
    assert refusal.setting == "webhookAuthorization"
    assert "settings.webhookAuthorization" in refusal.message
    assert HOOK_AUTH not in refusal.message


def test_without_a_configured_value_everything_is_refused(emulator: AdaptyEmulator) -> None:
    values = {k: v for k, v in settings(emulator).items() if k != "webhookAuthorization"}
    with HookEndpoint(values) as endpoint:
        assert not emulator.send_handshake(endpoint.url)
        event = emulator.webhook_event("subscription_renewed", "user-7")
        assert emulator.send_webhook(endpoint.url, event).status_code == 401
    assert all(r.setting == "webhookAuthorization" for r in endpoint.refusals)
    assert "is set" in endpoint.refusals[0].message


def test_unsigned_webhooks_cannot_detect_a_changed_body(emulator: AdaptyEmulator) -> None:
    """Documents the limit: only the header is checked, so a body changed in transit still verifies."""
    event = emulator.webhook_event("subscription_renewed", "user-7", price_usd=9.99)
    body = json.dumps(event).encode().replace(b"9.99", b"0.01")
    request = WebhookRequest("POST", "/", {"authorization": HOOK_AUTH}, body)
    assert AdaptyConnector().verify_webhook(context(settings(emulator)), request) is None


def test_an_event_becomes_one_envelope_whose_id_is_the_profile_event_id(emulator: AdaptyEmulator) -> None:
    event = emulator.webhook_event(
        "subscription_renewed",
        "user-7",
        price_usd=9.99,
        proceeds_usd=8.49,
        subscription_expires_at="2026-02-05T10:00:00.000000+0000",
    )
    event["event_datetime"] = "2026-01-05T10:00:00.000000+0000"
    event["email"] = "seven@example.com"
    request = WebhookRequest("POST", "/", {"authorization": HOOK_AUTH}, json.dumps(event).encode())
    result = AdaptyConnector().handle_webhook(context(settings(emulator)), request)
    (envelope,) = result.events
    assert envelope["id"] == event["event_properties"]["profile_event_id"]
    assert envelope["type"] == "subscription_renewed"
    assert envelope["source"] == "adapty"
    assert envelope["occurred_at"] == "2026-01-05T10:00:00Z"
    assert envelope["subject"] == {
        "id": event["profile_id"],
        "external_id": "user-7",
        "email": "seven@example.com",
    }
    data = envelope["data"]
    assert data["vendor_product_id"] == data["product_id"] == "premium.monthly"
    assert (data["price_usd"], data["proceeds_usd"], data["currency"]) == (9.99, 8.49, "USD")
    assert (data["store"], data["environment"]) == ("app_store", "Production")
    assert data["expiration_at"] == "2026-02-05T10:00:00Z"
    assert envelope["raw"] == event
    again = AdaptyConnector().handle_webhook(context(settings(emulator)), request)
    assert again.events[0]["id"] == envelope["id"]  # a retry: recorded once by the core


def test_an_event_without_profile_event_id_still_gets_a_stable_id(emulator: AdaptyEmulator) -> None:
    event = emulator.webhook_event("access_level_updated", "user-7")
    del event["event_properties"]["profile_event_id"]
    request = WebhookRequest("POST", "/", {}, json.dumps(event).encode())
    first = AdaptyConnector().handle_webhook(context({}), request).events[0]["id"]
    assert first == AdaptyConnector().handle_webhook(context({}), request).events[0]["id"]
    assert first.startswith("adapty_")


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"profile_id": "p"}'])
def test_a_body_that_is_not_an_adapty_event_is_a_permanent_error(body: bytes) -> None:
    with pytest.raises(PermanentError):
        AdaptyConnector().handle_webhook(context({}), WebhookRequest("POST", "/", {}, body))


# -- through the core: a published event delivered by the worker, on SQLite and PostgreSQL --


@pytest.fixture
def live(config: Config) -> Iterator[Runtime]:
    runtime = Runtime.start(dataclasses.replace(config, redispatch_after=1.0, reaper_interval=0.2, lease_seconds=5.0))
    runtime.pipeline.start(threads=2)
    yield runtime
    runtime.close()


def test_the_core_delivers_a_published_purchase_once(
    api: Client, tenant: dict[str, str], live: Runtime, emulator: AdaptyEmulator
) -> None:
    emulator.add_profile("user-7")
    body = {
        "service": "adapty",
        "name": "Adapty",
        "settings": settings(emulator),
        "synchronizations": [{"eventType": "subscription.created"}],
        "retrySchedule": [0, 0, 0],  # retry at once: the test waits for no backoff
    }
    created = api.post("/v1/integrations", json=body, headers=tenant)
    assert created.status_code == 201, created.text
    emulator.fail_next(1, 503)  # the first attempt fails; the retry succeeds with the same transaction id
    event = purchase()
    [delivery] = publish(api, tenant, {"type": event["type"], "data": event["data"]})
    wait_for(lambda: all_in(live, [delivery], {"succeeded"}), timeout=20)
    sent = {json.loads(r.body)["store_transaction_id"] for r in emulator.received if r.path == SET}
    assert len(sent) == 1
    assert len(emulator.transactions) == 1
    detail = api.get(f"/v1/integrations/events/{delivery}", headers=tenant).json()["event"]
    assert detail["attempts"] == 2
    assert all(log["request"]["headers"]["authorization"] == "********" for log in detail["communication_logs"])
