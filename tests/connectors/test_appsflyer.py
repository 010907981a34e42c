"""The AppsFlyer connector against its emulator, over real HTTP; the sync and the Push API also through the core.

Decisions these tests pin down (see plugins/appsflyer):

* one ``baseUrl`` serves the API and S2S hosts: a non-AppsFlyer URL takes both, an appsflyer.com one only the API;
* the raw-data sync reads each report one UTC day at a time and checkpoints after each day; a day is read
  again until it is six hours past its end; a spent daily quota (HTTP 400) is transient until 00:00 UTC;
* event ids are digests of appsflyer_id, event_name and event_time to the second, so the same event pushed
  and pulled is recorded once;
* the Push API is unsigned: only the static token is checked (a changed body verifies; nothing is stale);
* S2S events carry no idempotency key (AppsFlyer takes none): the key travels in eventValue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from interlink.connector import ConnectorContext, PermanentError, TransientError, WebhookRequest
from interlink.http import recording_client
from interlink.pipeline.sync import run_sync
from interlink.plugins.appsflyer import AppsFlyerConnector
from interlink.plugins.appsflyer._api import base_urls
from interlink.runtime import Runtime
from interlink.testing.emulators.appsflyer import QUOTA_MESSAGE, AppsFlyerEmulator
from tests.pipeline_helpers import wait_for
from tests.sync_helpers import Client, integration, published_per_record, run, trigger

TOKEN = "af-push-token-for-tests-0123456789"
SECRETS = ("apiKey", "devKey", "webhookAuthorization")


@pytest.fixture
def emulator() -> Iterator[AppsFlyerEmulator]:
    with AppsFlyerEmulator(webhook_secret=TOKEN) as emu:
        yield emu


def settings(emu: AppsFlyerEmulator, **extra: Any) -> dict[str, Any]:
    return {**emu.integration_settings(), **extra}


def context(
    values: Mapping[str, Any], state: Mapping[str, Any] | None = None, now: datetime | None = None
) -> ConnectorContext:
    ctx = ConnectorContext(
        integration_id="int_test",
        settings=dict(values),
        http=recording_client(secrets=[str(values[k]) for k in SECRETS if values.get(k)]),
        logger=logging.getLogger("interlink.connector.appsflyer"),
        state=json.loads(json.dumps(dict(state or {}))),
    )
    if now is not None:
        ctx.now = lambda: now
    return ctx


def consume(
    ctx: ConnectorContext,
    stop_after: int | None = None,
    records: list[dict[str, Any]] | None = None,
    checkpoints: list[tuple[int, Any]] | None = None,
) -> tuple[list[dict[str, Any]], list[tuple[int, Any]]]:
    """Run a sync into ``records``/``checkpoints`` (so a raising one leaves what it yielded); ``stop_after``
    checkpoints, stop there as a killed worker would."""
    records = [] if records is None else records
    checkpoints = [] if checkpoints is None else checkpoints
    for item in AppsFlyerConnector().sync(ctx):
        if set(item) == {"checkpoint"}:
            checkpoints.append((len(records), item["checkpoint"]))
            if stop_after is not None and len(checkpoints) == stop_after:
                break
        else:
            records.append(item)
    return records, checkpoints


def raw_requests(emu: AppsFlyerEmulator) -> list[str]:
    return [r.path for r in emu.received if "/raw-data/" in r.path]


NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
TODAY = NOW.replace(hour=0)


# -- hosts and check --


def test_one_base_url_serves_both_hosts_unless_it_is_appsflyers() -> None:
    assert base_urls({}) == ("https://hq1.appsflyer.com", "https://api3.appsflyer.com")
    assert base_urls({"baseUrl": "https://hq2.appsflyer.com/"}) == (
        "https://hq2.appsflyer.com",
        "https://api3.appsflyer.com",
    )
    assert base_urls({"baseUrl": "http://proxy.local:8080/af"}) == ("http://proxy.local:8080/af",) * 2


def test_check_lists_apps_with_the_bearer_token(emulator: AppsFlyerEmulator) -> None:
    assert AppsFlyerConnector().check(context(settings(emulator))).ok
    assert emulator.received[-1].path.startswith("/api/mng/apps")
    assert emulator.received[-1].headers["authorization"] == f"Bearer {emulator.api_key}"


def test_a_refused_token_names_the_api_key_setting(emulator: AppsFlyerEmulator) -> None:
    with pytest.raises(PermanentError) as caught:
        AppsFlyerConnector().check(context(settings(emulator, apiKey="af_wrong_token_0000")))
    assert caught.value.setting == "apiKey"
    assert "update settings.apiKey" in caught.value.message
    assert "af_wrong_token_0000" not in caught.value.message


def test_an_app_the_token_cannot_see_names_the_app_setting(emulator: AppsFlyerEmulator) -> None:
    with pytest.raises(PermanentError) as caught:
        AppsFlyerConnector().check(context(settings(emulator, appId="com.other.app")))
    assert caught.value.setting == "appId"


def test_an_ios_app_id_without_its_prefix_gets_it(emulator: AppsFlyerEmulator) -> None:
    assert AppsFlyerConnector().check(context(settings(emulator, appId=emulator.app_id[2:]))).ok


# -- sync --


def seed_days(emu: AppsFlyerEmulator) -> None:
    """Installs and purchases over the three days of the window, some at the same second on other devices."""
    for days in range(3):
        for k in range(4):
            emu.add_event("installs_report", event_time=TODAY - timedelta(days=days, seconds=-3600 * k))
            emu.add_event("in_app_events_report", event_time=TODAY - timedelta(days=days, seconds=-60), revenue="1.5")
    emu.add_event("installs_report", event_time=TODAY - timedelta(days=5))  # before the window


def test_sync_reads_each_report_day_by_day_with_a_checkpoint_after_each(emulator: AppsFlyerEmulator) -> None:
    seed_days(emulator)
    records, checkpoints = consume(context(settings(emulator), now=NOW))
    assert len(records) == 24
    assert len({r["id"] for r in records}) == 24
    assert len(checkpoints) == 6  # two reports, three days
    days = [(TODAY - timedelta(days=d)).date().isoformat() for d in (2, 1, 0)]
    assert [p.split("from=")[1][:10] for p in raw_requests(emulator)] == days * 2
    # yesterday ended 12 hours ago (> 6 h): done; today is read again next time
    assert checkpoints[-1][1] == {"next": {"installs_report": days[2], "in_app_events_report": days[2]}}
    assert checkpoints[2][1] == {"next": {"installs_report": days[2]}}


def test_records_are_envelopes_with_amounts_in_minor_units(emulator: AppsFlyerEmulator) -> None:
    at = TODAY + timedelta(hours=3, seconds=7)
    row = emulator.add_event(
        "in_app_events_report", event_time=at, revenue="1200", currency="JPY", customer_user_id="user-9"
    )
    emulator.add_event("in_app_events_report", event_time=at, revenue="9.99", currency="USD")
    records, _ = consume(context(settings(emulator, reports=["in_app_events_report"], lookbackDays=1), now=NOW))
    first = records[0]
    assert first["type"] == "in-app-event"
    assert first["source"] == "appsflyer"
    assert first["occurred_at"] == at.isoformat().replace("+00:00", "Z")
    assert first["subject"] == {"id": row["AppsFlyer ID"], "external_id": "user-9"}
    assert (first["data"]["amount"], first["data"]["currency"]) == (1200, "JPY")
    assert (records[1]["data"]["amount"], records[1]["data"]["currency"]) == (999, "USD")
    assert first["data"]["event_name"] == "af_purchase"
    assert first["raw"]["AppsFlyer ID"] == row["AppsFlyer ID"]
    assert first["id"].startswith("af_")


def test_uninstalls_and_reinstalls_get_their_types(emulator: AppsFlyerEmulator) -> None:
    emulator.add_event("uninstall_events_report", event_time=TODAY)
    emulator.add_event("installs_report", event_time=TODAY, event_name="reinstall")
    reports = ["installs_report", "uninstall_events_report"]
    records, _ = consume(context(settings(emulator, reports=reports, lookbackDays=1), now=NOW))
    assert [r["type"] for r in records] == ["reinstall", "uninstall"]


@pytest.mark.parametrize("cut", [1, 2, 4, 5])
def test_resuming_from_a_checkpoint_gives_the_union_of_a_full_run(emulator: AppsFlyerEmulator, cut: int) -> None:
    seed_days(emulator)
    full, _ = consume(context(settings(emulator), now=NOW))
    before, checkpoints = consume(context(settings(emulator), now=NOW), stop_after=cut)
    resumed, _ = consume(context(settings(emulator), state=checkpoints[-1][1], now=NOW))
    assert {r["id"] for r in before} | {r["id"] for r in resumed} == {r["id"] for r in full}
    assert len(before) + len(resumed) < len(full) + 8  # only the unsettled day is read twice


def test_a_day_is_read_again_until_it_has_settled(emulator: AppsFlyerEmulator) -> None:
    yesterday = (TODAY - timedelta(days=1)).date().isoformat()
    early = TODAY + timedelta(hours=3)  # yesterday ended 3 hours ago: not settled
    _, checkpoints = consume(context(settings(emulator, reports=["installs_report"], lookbackDays=2), now=early))
    assert checkpoints[-1][1] == {"next": {"installs_report": yesterday}}
    later = TODAY + timedelta(hours=7)
    _, checkpoints = consume(
        context(settings(emulator, reports=["installs_report"]), state=checkpoints[-1][1], now=later)
    )
    assert checkpoints[-1][1] == {"next": {"installs_report": TODAY.date().isoformat()}}


def test_a_state_older_than_90_days_starts_at_the_oldest_day_served(
    emulator: AppsFlyerEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    state = {"next": {"installs_report": (TODAY - timedelta(days=200)).date().isoformat()}}
    ctx = context(settings(emulator, reports=["installs_report"]), state=state, now=NOW)
    with caplog.at_level(logging.WARNING):
        _, checkpoints = consume(ctx, stop_after=1)
    assert raw_requests(emulator)[0].split("from=")[1][:10] == (TODAY - timedelta(days=89)).date().isoformat()
    assert "only the last 90 days" in caplog.text
    assert checkpoints


def test_a_spent_quota_is_transient_until_midnight_and_the_days_read_stay_checkpointed(
    emulator: AppsFlyerEmulator,
) -> None:
    seed_days(emulator)
    emulator.quotas["installs_report"] = 2
    ctx = context(settings(emulator, reports=["installs_report"]), now=NOW)
    records: list[dict[str, Any]] = []
    checkpoints: list[tuple[int, Any]] = []
    with pytest.raises(TransientError) as caught:
        consume(ctx, records=records, checkpoints=checkpoints)
    assert QUOTA_MESSAGE in caught.value.message
    assert caught.value.delay == pytest.approx(12 * 3600 + 60)  # NOW is noon UTC
    assert len(records) == 8
    assert len(checkpoints) == 2


def test_429_is_transient_with_retry_after_then_the_sync_resumes(emulator: AppsFlyerEmulator) -> None:
    seed_days(emulator)
    emulator.fail_next(1, 429, headers={"Retry-After": "17"}, when=lambda r: "/in_app_events_report/" in r.path)
    ctx = context(settings(emulator), now=NOW)
    saved: list[tuple[int, Any]] = []
    with pytest.raises(TransientError) as caught:
        consume(ctx, checkpoints=saved)
    assert caught.value.delay == 17
    rest, _ = consume(context(settings(emulator), state=saved[-1][1], now=NOW))
    assert len(rest) == 12 + 4  # the in-app events, and today's installs again


@pytest.mark.parametrize(
    ("status", "error", "setting"),
    [
        (503, TransientError, None),
        (404, PermanentError, "appId"),
        (401, PermanentError, "apiKey"),
        (400, PermanentError, None),
    ],
)
def test_answers_are_classified(
    emulator: AppsFlyerEmulator, status: int, error: type[Exception], setting: str | None
) -> None:
    emulator.fail_next(1, status, body={"message": "injected"})
    with pytest.raises(error) as caught:
        consume(context(settings(emulator), now=NOW))
    assert getattr(caught.value, "setting", None) == setting


def test_a_redirect_to_the_same_origin_is_followed_with_the_token(emulator: AppsFlyerEmulator) -> None:
    emulator.add_event("installs_report", event_time=TODAY)
    target = f"/api/raw-data/export/app/{emulator.app_id}/installs_report/v5?from={TODAY.date()}&to={TODAY.date()}"
    emulator.fail_next(1, 302, body=b"", headers={"Location": target})
    records, _ = consume(context(settings(emulator, reports=["installs_report"], lookbackDays=1), now=NOW))
    assert len(records) == 1
    assert emulator.received[-1].headers["authorization"] == f"Bearer {emulator.api_key}"


def test_a_redirect_to_a_plain_http_host_elsewhere_is_refused(emulator: AppsFlyerEmulator) -> None:
    emulator.fail_next(1, 302, body=b"", headers={"Location": "http://downloads.example/report.csv"})
    with pytest.raises(PermanentError) as caught:
        consume(context(settings(emulator, reports=["installs_report"], lookbackDays=1), now=NOW))
    assert caught.value.setting == "baseUrl"


def test_quoted_fields_with_commas_and_newlines_survive(emulator: AppsFlyerEmulator) -> None:
    value = '{"af_content": "a, b\nc"}'
    emulator.add_event("in_app_events_report", event_time=TODAY, columns={"Event Value": value})
    records, _ = consume(context(settings(emulator, reports=["in_app_events_report"], lookbackDays=1), now=NOW))
    assert records[0]["data"]["event_value"] == value


# -- deliver --


def order(**data: Any) -> dict[str, Any]:
    base = {"appsflyer_id": "1700000000000-123", "id": "order-7", "amount": 1999, "currency": "usd"}
    return {"id": "evt_1", "type": "order.created", "occurred_at": "2026-01-05T10:00:00.250Z", "data": {**base, **data}}


def test_an_order_becomes_an_af_purchase_s2s_event(emulator: AppsFlyerEmulator) -> None:
    AppsFlyerConnector().deliver(context(settings(emulator)), order(customer_user_id="user-7", ip="1.2.3.4"), "evt_1")
    (sent,) = [r for r in emulator.received if r.path.startswith("/inappevent/")]
    assert sent.path == f"/inappevent/{emulator.app_id}"
    assert sent.headers["authentication"] == emulator.dev_key
    (event,) = emulator.s2s_events
    assert event["eventName"] == "af_purchase"
    assert event["eventTime"] == "2026-01-05 10:00:00.250"
    assert (event["eventCurrency"], event["customer_user_id"], event["ip"]) == ("USD", "user-7", "1.2.3.4")
    value = json.loads(event["eventValue"])
    assert value == {
        "af_revenue": "19.99",
        "af_currency": "USD",
        "af_order_id": "order-7",
        "interlink_event_id": "evt_1",
    }


def test_an_inbound_appsflyer_envelope_names_its_device(emulator: AppsFlyerEmulator) -> None:
    inbound: dict[str, Any] = {"id": "af_1", "type": "install", "occurred_at": None, "source": "appsflyer", "raw": {}}
    inbound |= {"subject": {"id": "1700-9", "external_id": "u-9"}, "data": {}}
    event = {"id": "evt_2", "type": "customer.created", "occurred_at": "2026-01-05T10:00:00Z", "data": inbound}
    AppsFlyerConnector().deliver(context(settings(emulator)), event, "evt_2")
    assert emulator.s2s_events[0]["appsflyer_id"] == "1700-9"
    assert emulator.s2s_events[0]["eventName"] == "af_complete_registration"


@pytest.mark.parametrize(
    ("event", "setting"),
    [
        (order(appsflyer_id=None), None),
        ({**order(), "type": "invoice.paid"}, None),
        (order(product_id="x" * 1200), None),
    ],
)
def test_an_event_appsflyer_cannot_take_fails_before_any_request(
    emulator: AppsFlyerEmulator, event: dict[str, Any], setting: str | None
) -> None:
    with pytest.raises(PermanentError) as caught:
        AppsFlyerConnector().deliver(context(settings(emulator)), event, "evt_1")
    assert caught.value.setting == setting
    assert not emulator.received


@pytest.mark.parametrize("dev_key", ["wrong-dev-key-000", None])
def test_a_wrong_or_missing_dev_key_names_the_setting(emulator: AppsFlyerEmulator, dev_key: str | None) -> None:
    values = {k: v for k, v in settings(emulator, devKey=dev_key).items() if v is not None}
    with pytest.raises(PermanentError) as caught:
        AppsFlyerConnector().deliver(context(values), order(), "evt_1")
    assert caught.value.setting == "devKey"
    assert emulator.s2s_events == []


def test_retries_carry_the_same_key_and_429_gives_its_delay(emulator: AppsFlyerEmulator) -> None:
    emulator.fail_next(1, 503)
    emulator.fail_next(1, 429, headers={"Retry-After": "9"})
    for expected in (TransientError, TransientError):
        with pytest.raises(expected):
            AppsFlyerConnector().deliver(context(settings(emulator)), order(), "evt_9")
    AppsFlyerConnector().deliver(context(settings(emulator)), order(), "evt_9")
    sent = [json.loads(json.loads(r.body)["eventValue"])["interlink_event_id"] for r in emulator.received]
    assert sent == ["evt_9"] * 3
    assert len(emulator.s2s_events) == 1


def test_429_delay_is_the_retry_after(emulator: AppsFlyerEmulator) -> None:
    emulator.fail_next(1, 429, headers={"Retry-After": "9"})
    with pytest.raises(TransientError) as caught:
        AppsFlyerConnector().deliver(context(settings(emulator)), order(), "evt_9")
    assert caught.value.delay == 9


# -- Push API --


def push(
    message: Mapping[str, Any], headers: Mapping[str, str], method: str = "POST", path: str = "/v1/hooks/int_test"
) -> WebhookRequest:
    body = json.dumps(message).encode() if method == "POST" else b""
    return WebhookRequest(method, path, {k.lower(): v for k, v in headers.items()}, body)


def test_the_configured_token_in_the_configured_header_is_accepted(emulator: AppsFlyerEmulator) -> None:
    message = emulator.webhook_event("install")
    assert (
        AppsFlyerConnector().verify_webhook(context(settings(emulator)), push(message, {"Authorization": TOKEN}))
        is None
    )
    values = settings(emulator, webhookHeader="X-AF-Token")
    assert AppsFlyerConnector().verify_webhook(context(values), push(message, {"x-af-token": TOKEN})) is None


@pytest.mark.parametrize("headers", [{"Authorization": "wrong"}, {}, {"Authorization": TOKEN[:-1]}, {"X-Other": TOKEN}])
def test_a_wrong_or_missing_token_is_refused_naming_the_setting(
    emulator: AppsFlyerEmulator, headers: dict[str, str]
) -> None:
    with pytest.raises(PermanentError) as caught:
        AppsFlyerConnector().verify_webhook(
            context(settings(emulator)), push(emulator.webhook_event("install"), headers)
        )
    assert caught.value.setting == "webhookAuthorization"
    assert TOKEN not in caught.value.message


def test_without_a_configured_token_everything_is_refused(emulator: AppsFlyerEmulator) -> None:
    values = {k: v for k, v in settings(emulator).items() if k != "webhookAuthorization"}
    with pytest.raises(PermanentError) as caught:
        AppsFlyerConnector().verify_webhook(
            context(values), push(emulator.webhook_event("install"), {"Authorization": TOKEN})
        )
    assert "is set" in caught.value.message


def test_unsigned_messages_cannot_detect_a_changed_body(emulator: AppsFlyerEmulator) -> None:
    """Documents the limit: only the token is checked, so a body changed in transit still verifies."""
    request = push({**emulator.webhook_event("af_purchase"), "event_revenue": "0.01"}, {"Authorization": TOKEN})
    assert AppsFlyerConnector().verify_webhook(context(settings(emulator)), request) is None


def test_a_pushed_event_and_the_same_event_pulled_have_one_id(emulator: AppsFlyerEmulator) -> None:
    at = TODAY + timedelta(hours=2, seconds=5, milliseconds=120)
    row = emulator.add_event("installs_report", event_time=at, customer_user_id="user-3")
    stamp = at.strftime("%Y-%m-%d %H:%M:%S.") + "120"
    message = emulator.webhook_event("install", row["AppsFlyer ID"], event_time=stamp, customer_user_id="user-3")
    (pushed,) = AppsFlyerConnector().handle_webhook(context({}), push(message, {})).events
    pulled, _ = consume(context(settings(emulator, reports=["installs_report"], lookbackDays=1), now=NOW))
    assert pushed["id"] == pulled[0]["id"]
    assert (pushed["type"], pushed["subject"]) == ("install", {"id": row["AppsFlyer ID"], "external_id": "user-3"})
    assert pushed["occurred_at"] == at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert pushed["raw"] == message


def test_a_get_message_parses_from_the_query_string(emulator: AppsFlyerEmulator) -> None:
    request = push(
        {},
        {},
        method="GET",
        path="/v1/hooks/int_test?appsflyer_id=17-1&event_name=af_purchase"
        "&event_time=2026-01-05%2010:00:00.000&event_revenue=4.5&event_revenue_currency=EUR",
    )
    (event,) = AppsFlyerConnector().handle_webhook(context({}), request).events
    assert (event["type"], event["data"]["amount"], event["data"]["currency"]) == ("in-app-event", 450, "EUR")


@pytest.mark.parametrize("body", [b"not json", b"[1]", b"{}", b'{"media_source": "x"}'])
def test_a_body_that_is_not_a_push_message_is_a_permanent_error(body: bytes) -> None:
    with pytest.raises(PermanentError):
        AppsFlyerConnector().handle_webhook(context({}), WebhookRequest("POST", "/", {}, body))


# -- through the core: the sync pipeline and the hook endpoint, on SQLite and PostgreSQL --


def create(client: Client, auth: dict[str, str], values: Mapping[str, Any]) -> str:
    created = client.post(
        "/v1/integrations", json={"service": "appsflyer", "name": "AF", "settings": dict(values)}, headers=auth
    )
    assert created.status_code == 201, created.text
    found: str = created.json()["integration"]["id"]
    return found


def test_the_core_publishes_each_event_once_and_resumes_a_failed_run(
    runtime: Runtime, client: Client, auth: dict[str, str], emulator: AppsFlyerEmulator
) -> None:
    emulator.seed_records(30)
    integration_id = create(client, auth, settings(emulator))
    emulator.fail_next(1, 400, body={"message": "injected"}, when=lambda r: "/in_app_events_report/" in r.path)
    first = trigger(client, auth, integration_id)
    run_sync(runtime, first)
    assert run(client, auth, integration_id, first)["status"] == "failed"
    assert integration(client, auth, integration_id)["status"] == "error"
    second = trigger(client, auth, integration_id)
    run_sync(runtime, second)
    assert run(client, auth, integration_id, second)["status"] == "succeeded"
    published = published_per_record(runtime, integration_id)
    assert len(published) == 30
    assert set(published.values()) == {1}
    installs = [p for p in raw_requests(emulator) if "/installs_report/" in p]
    again = [p.split("from=")[1][:10] for p in installs[3:]]  # the second run: only what had not settled
    today = datetime.now(UTC).date()
    assert str(today) in again
    assert str(today - timedelta(days=2)) not in again


def test_a_push_message_through_the_hook_endpoint_becomes_one_inbound_event(
    runtime: Runtime, client: Client, auth: dict[str, str], emulator: AppsFlyerEmulator
) -> None:
    integration_id = create(client, auth, settings(emulator))
    body = json.dumps(emulator.webhook_event("af_purchase", event_revenue="2.5")).encode()
    for _ in range(2):  # a repeat of the message is recorded once
        answer = client.post(f"/v1/hooks/{integration_id}", content=body, headers=emulator.webhook_headers(body))
        assert answer.status_code == 200, answer.text
    refused = client.post(
        f"/v1/hooks/{integration_id}", content=body, headers=emulator.webhook_headers(body, secret="x" * 20)
    )
    assert refused.status_code == 401
    assert TOKEN not in refused.text

    def inbound() -> list[dict[str, Any]]:
        found = client.post("/v1/integrations/events/filter", json={"integrationId": integration_id}, headers=auth)
        return [e for e in found.json()["events"] if e["direction"] == "inbound"]

    runtime.pipeline.start(threads=1)
    (recorded,) = wait_for(inbound, timeout=20)
    assert recorded["event_type"] == "in-app-event"
