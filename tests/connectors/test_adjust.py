"""The Adjust connector against its emulator, over real HTTP; the sync and a delivery also through the core.

Decisions these tests pin down (see plugins/adjust):

* one ``baseUrl`` serves the Report Service and S2S hosts: a non-Adjust URL takes both, an adjust.com one
  only the Report Service;
* the sync reads ended days only (before today, UTC), one day per request, checkpointing the next day;
  a row's id is ``<day>:<app token>:<network>:<campaign>``;
* S2S events are form-encoded with the event token ``eventTokens`` maps the type to; Adjust takes no
  idempotency key, so the key travels in ``callback_params``; "earlier unique event tracked" counts as
  delivered.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest

from interlink.config import Config
from interlink.connector import ConnectorContext, PermanentError, TransientError
from interlink.http import recording_client
from interlink.pipeline.sync import run_sync
from interlink.plugins.adjust import AdjustConnector
from interlink.plugins.adjust._api import base_urls
from interlink.runtime import Runtime
from interlink.testing.emulators.adjust import AdjustEmulator
from tests.pipeline_helpers import all_in, publish, wait_for
from tests.sync_helpers import Client, integration, published_per_record, run, trigger

SECRETS = ("apiKey", "s2sToken")
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
TODAY = NOW.date()


@pytest.fixture
def emulator() -> Iterator[AdjustEmulator]:
    with AdjustEmulator() as emu:
        yield emu


def settings(emu: AdjustEmulator, **extra: Any) -> dict[str, Any]:
    return {k: v for k, v in {**emu.integration_settings(), **extra}.items() if v is not None}


def context(values: Mapping[str, Any], state: Mapping[str, Any] | None = None, now: datetime = NOW) -> ConnectorContext:
    ctx = ConnectorContext(
        integration_id="int_test",
        settings=dict(values),
        http=recording_client(secrets=[str(values[k]) for k in SECRETS if values.get(k)]),
        logger=logging.getLogger("interlink.connector.adjust"),
        state=json.loads(json.dumps(dict(state or {}))),
    )
    ctx.now = lambda: now
    return ctx


def consume(
    ctx: ConnectorContext, stop_after: int | None = None, checkpoints: list[tuple[int, Any]] | None = None
) -> tuple[list[dict[str, Any]], list[tuple[int, Any]]]:
    records: list[dict[str, Any]] = []
    checkpoints = [] if checkpoints is None else checkpoints
    for item in AdjustConnector().sync(ctx):
        if set(item) == {"checkpoint"}:
            checkpoints.append((len(records), item["checkpoint"]))
            if stop_after is not None and len(checkpoints) == stop_after:
                break
        else:
            records.append(item)
    return records, checkpoints


def day(back: int) -> date:
    return TODAY - timedelta(days=back)


def reports(emu: AdjustEmulator) -> list[dict[str, list[str]]]:
    return [parse_qs(r.path.partition("?")[2]) for r in emu.received if r.path.startswith("/reports-service/report")]


# -- hosts and check --


def test_one_base_url_serves_both_hosts_unless_it_is_adjusts() -> None:
    assert base_urls({}) == ("https://automate.adjust.com", "https://s2s.adjust.com")
    assert base_urls({"baseUrl": "https://automate.adjust.com/"}) == (
        "https://automate.adjust.com",
        "https://s2s.adjust.com",
    )
    assert base_urls({"baseUrl": "http://proxy.local/adj"}) == ("http://proxy.local/adj",) * 2


def test_check_asks_for_one_day_of_installs(emulator: AdjustEmulator) -> None:
    emulator.add_row(day(1), "Organic", "none")
    result = AdjustConnector().check(context(settings(emulator)))
    assert result.ok
    assert "1 row" in result.message
    (query,) = reports(emulator)
    assert query["date_period"] == [f"{day(1)}:{day(1)}"]
    assert (query["dimensions"], query["metrics"], query["app_token__in"]) == (
        ["app"],
        ["installs"],
        [emulator.app_token],
    )
    assert emulator.received[-1].headers["authorization"] == f"Bearer {emulator.api_key}"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_names_the_api_key_setting(emulator: AdjustEmulator, status: int) -> None:
    emulator.fail_next(1, status)
    with pytest.raises(PermanentError) as caught:
        AdjustConnector().check(context(settings(emulator)))
    assert caught.value.setting == "apiKey"
    assert "update settings.apiKey" in caught.value.message


def test_a_wrong_token_is_refused_by_the_emulator(emulator: AdjustEmulator) -> None:
    with pytest.raises(PermanentError) as caught:
        AdjustConnector().check(context(settings(emulator, apiKey="adj_wrong_token_0000")))
    assert caught.value.setting == "apiKey"
    assert "adj_wrong_token_0000" not in caught.value.message


# -- sync --


def seed(emu: AdjustEmulator) -> None:
    for back in range(0, 9):  # today, the seven days of the window, and one before it
        for network in ("Organic", "Google Ads"):
            emu.add_row(day(back), network, f"campaign-{back}")


def test_sync_reads_each_ended_day_once_with_a_checkpoint_after_each(emulator: AdjustEmulator) -> None:
    seed(emulator)
    records, checkpoints = consume(context(settings(emulator)))
    assert len(records) == 14  # seven ended days, two rows each
    assert [c[1] for c in checkpoints] == [{"next": str(day(back))} for back in range(6, -1, -1)]
    assert [q["date_period"][0] for q in reports(emulator)] == [f"{day(b)}:{day(b)}" for b in range(7, 0, -1)]
    first = records[0]
    assert first["id"] == f"{day(7)}:{emulator.app_token}:Organic:campaign-7"
    assert (first["type"], first["source"], first["occurred_at"]) == ("kpi_report", "adjust", f"{day(7)}T00:00:00Z")
    row = emulator.rows[2 * 7]
    assert first["data"]["installs"] == row["installs"]
    assert first["data"]["amount"] == round(row["revenue"] * 100)
    assert first["data"]["currency"] == "USD"
    again, _ = consume(context(settings(emulator), state=checkpoints[-1][1]))
    assert again == []  # today has not ended


@pytest.mark.parametrize("cut", [1, 3, 6])
def test_resuming_from_a_checkpoint_reads_the_rest_and_nothing_twice(emulator: AdjustEmulator, cut: int) -> None:
    seed(emulator)
    full, _ = consume(context(settings(emulator)))
    before, checkpoints = consume(context(settings(emulator)), stop_after=cut)
    resumed, _ = consume(context(settings(emulator), state=checkpoints[-1][1]))
    assert [r["id"] for r in before + resumed] == [r["id"] for r in full]


def test_a_day_later_the_next_sync_reads_the_day_that_ended(emulator: AdjustEmulator) -> None:
    seed(emulator)
    _, checkpoints = consume(context(settings(emulator)))
    records, _ = consume(context(settings(emulator), state=checkpoints[-1][1], now=NOW + timedelta(days=1)))
    assert {r["data"]["day"] for r in records} == {str(TODAY)}


def test_429_is_transient_with_retry_after_and_the_sync_resumes_after_the_last_day(emulator: AdjustEmulator) -> None:
    seed(emulator)
    emulator.fail_next(
        1, 429, headers={"Retry-After": "11"}, when=lambda r: str(day(4)) in (r.arg("date_period") or "")
    )
    saved: list[tuple[int, Any]] = []
    with pytest.raises(TransientError) as caught:
        consume(context(settings(emulator)), checkpoints=saved)
    assert caught.value.delay == 11
    assert saved[-1][1] == {"next": str(day(4))}
    rest, _ = consume(context(settings(emulator), state=saved[-1][1]))
    assert len(rest) == 8


@pytest.mark.parametrize(("status", "error"), [(500, TransientError), (503, TransientError), (400, PermanentError)])
def test_answers_are_classified(emulator: AdjustEmulator, status: int, error: type[Exception]) -> None:
    emulator.fail_next(1, status)
    with pytest.raises(error):
        consume(context(settings(emulator)))


def test_an_answer_without_rows_names_the_base_url(emulator: AdjustEmulator) -> None:
    emulator.fail_next(1, 200, body={"unexpected": True})
    with pytest.raises(PermanentError) as caught:
        consume(context(settings(emulator)))
    assert caught.value.setting == "baseUrl"


# -- deliver --


def order(**data: Any) -> dict[str, Any]:
    base = {"id": "order-7", "gps_adid": "38400000-8cf0-11bd-b23e-10b96e40000d", "amount": 1999, "currency": "eur"}
    return {"id": "evt_1", "type": "order.created", "occurred_at": "2026-01-05T10:00:00Z", "data": {**base, **data}}


def test_an_order_becomes_a_form_encoded_s2s_event(emulator: AdjustEmulator) -> None:
    AdjustConnector().deliver(context(settings(emulator)), order(ip="1.2.3.4"), "evt_1")
    (sent,) = emulator.received
    assert (sent.method, sent.path) == ("POST", "/event")
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.headers["authorization"] == f"Bearer {emulator.s2s_token}"
    (event,) = emulator.events
    assert event == {
        "s2s": "1",
        "app_token": emulator.app_token,
        "event_token": "abc123",
        "gps_adid": "38400000-8cf0-11bd-b23e-10b96e40000d",
        "created_at_unix": str(int(datetime(2026, 1, 5, 10, tzinfo=UTC).timestamp())),
        "revenue": "19.99",
        "currency": "EUR",
        "environment": "production",
        "ip_address": "1.2.3.4",
        "callback_params": '{"interlink_event_id":"evt_1"}',
    }


def test_sandbox_and_another_device_id(emulator: AdjustEmulator) -> None:
    event = order(gps_adid=None, idfa="6D92078A-8246-4BA4-AE5B-76104861E7DC", amount=500, currency="JPY")
    AdjustConnector().deliver(context(settings(emulator, environment="sandbox")), event, "evt_2")
    (sent,) = emulator.events
    assert (sent["idfa"], sent["revenue"], sent["environment"]) == (
        "6D92078A-8246-4BA4-AE5B-76104861E7DC",
        "500",
        "sandbox",
    )


@pytest.mark.parametrize(
    ("event", "values", "setting"),
    [
        (order(gps_adid=None), {}, None),
        ({**order(), "type": "subscription.cancelled"}, {}, "eventTokens"),
        (order(), {"eventTokens": ["customer.created=ghi789"]}, "eventTokens"),
    ],
)
def test_an_event_adjust_cannot_take_fails_before_any_request(
    emulator: AdjustEmulator, event: dict[str, Any], values: dict[str, Any], setting: str | None
) -> None:
    with pytest.raises(PermanentError) as caught:
        AdjustConnector().deliver(context(settings(emulator, **values)), event, "evt_1")
    assert caught.value.setting == setting
    assert not emulator.received


@pytest.mark.parametrize("token", ["adj_wrong_s2s_token_000", None])
def test_a_wrong_or_missing_s2s_token_names_the_setting(emulator: AdjustEmulator, token: str | None) -> None:
    with pytest.raises(PermanentError) as caught:
        AdjustConnector().deliver(context(settings(emulator, s2sToken=token)), order(), "evt_1")
    assert caught.value.setting == "s2sToken"
    assert ("set settings.s2sToken" if token is None else "update settings.s2sToken") in caught.value.message
    assert emulator.events == []


def test_without_s2s_security_no_authorization_is_sent(emulator: AdjustEmulator) -> None:
    emulator.s2s_token = None
    values = {k: v for k, v in settings(emulator).items() if k != "s2sToken"}
    AdjustConnector().deliver(context(values), order(), "evt_1")
    assert "authorization" not in emulator.received[0].headers
    assert len(emulator.events) == 1


def test_an_unknown_event_token_is_permanent(emulator: AdjustEmulator) -> None:
    with pytest.raises(PermanentError) as caught:
        AdjustConnector().deliver(context(settings(emulator, eventTokens=["order.created=zzz999"])), order(), "evt_1")
    assert "Event token not found" in caught.value.message


def test_an_earlier_unique_event_counts_as_delivered(emulator: AdjustEmulator) -> None:
    emulator.fail_next(1, 400, body={"error": "Event request failed (Ignoring event, earlier unique event tracked)"})
    AdjustConnector().deliver(context(settings(emulator)), order(), "evt_1")


def test_retries_carry_the_same_key_and_429_gives_its_delay(emulator: AdjustEmulator) -> None:
    emulator.fail_next(1, 503)
    emulator.fail_next(1, 429, headers={"Retry-After": "13"})
    with pytest.raises(TransientError):
        AdjustConnector().deliver(context(settings(emulator)), order(), "evt_9")
    with pytest.raises(TransientError) as caught:
        AdjustConnector().deliver(context(settings(emulator)), order(), "evt_9")
    assert caught.value.delay == 13
    AdjustConnector().deliver(context(settings(emulator)), order(), "evt_9")
    keys = [parse_qs(r.body.decode())["callback_params"][0] for r in emulator.received]
    assert keys == ['{"interlink_event_id":"evt_9"}'] * 3
    assert len(emulator.events) == 1


# -- through the core, on SQLite and PostgreSQL --


def test_the_core_publishes_each_row_once_and_resumes_a_failed_run(
    runtime: Runtime, client: Client, auth: dict[str, str], emulator: AdjustEmulator
) -> None:
    emulator.seed_records(21)
    body = {"service": "adjust", "name": "Adjust", "settings": settings(emulator)}
    created = client.post("/v1/integrations", json=body, headers=auth)
    assert created.status_code == 201, created.text
    integration_id = created.json()["integration"]["id"]
    emulator.fail_next(1, 400, body={"error": "injected"}, when=lambda r: str(day(3)) in (r.arg("date_period") or ""))
    first = trigger(client, auth, integration_id)
    run_sync(runtime, first)
    assert run(client, auth, integration_id, first)["status"] == "failed"
    assert integration(client, auth, integration_id)["status"] == "error"
    second = trigger(client, auth, integration_id)
    run_sync(runtime, second)
    assert run(client, auth, integration_id, second)["status"] == "succeeded"
    published = published_per_record(runtime, integration_id)
    assert len(published) == 21
    assert set(published.values()) == {1}
    periods = [q["date_period"][0] for q in reports(emulator)]
    assert periods.count(f"{day(3)}:{day(3)}") == 2  # the failed day, read again
    assert periods.count(f"{day(5)}:{day(5)}") == 1  # a day read before the failure, not again


@pytest.fixture
def live(config: Config) -> Iterator[Runtime]:
    runtime = Runtime.start(dataclasses.replace(config, redispatch_after=1.0, reaper_interval=0.2, lease_seconds=5.0))
    runtime.pipeline.start(threads=2)
    yield runtime
    runtime.close()


def test_the_core_delivers_a_published_order_once_with_one_key(
    api: Client, tenant: dict[str, str], live: Runtime, emulator: AdjustEmulator
) -> None:
    body = {
        "service": "adjust",
        "name": "Adjust",
        "settings": settings(emulator),
        "synchronizations": [{"eventType": "order.created"}],
        "retrySchedule": [0, 0, 0],
    }
    assert api.post("/v1/integrations", json=body, headers=tenant).status_code == 201
    emulator.fail_next(1, 503)
    [delivery] = publish(api, tenant, {"type": "order.created", "data": order()["data"]})
    wait_for(lambda: all_in(live, [delivery], {"succeeded"}), timeout=20)
    keys = {parse_qs(r.body.decode())["callback_params"][0] for r in emulator.received}
    assert keys == {json.dumps({"interlink_event_id": delivery}, separators=(",", ":"))}
    assert len(emulator.events) == 1
    detail = api.get(f"/v1/integrations/events/{delivery}", headers=tenant).json()["event"]
    assert all(log["request"]["headers"]["authorization"] == "********" for log in detail["communication_logs"])
