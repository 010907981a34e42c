"""The event pipeline in process (the embedded default), on SQLite and PostgreSQL, against real HTTP."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient
from standardwebhooks.webhooks import Webhook

from interlink.api import create_app
from interlink.config import Config
from interlink.runtime import Runtime
from interlink.store.tenants import create_tenant, list_tenants
from tests.conftest import make_tenant
from tests.pipeline_helpers import all_in, create_custom, publish, statuses, wait_for
from tests.sink import Reply, Sink, running_sink

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
def fast_config(config: Config) -> Config:
    return dataclasses.replace(config, redispatch_after=1.0, reaper_interval=0.2, lease_seconds=5.0)


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as s:
        yield s


@pytest.fixture
def live(fast_config: Config) -> Iterator[Runtime]:
    """A runtime whose in-process worker and reaper run."""
    runtime = Runtime.start(fast_config)
    runtime.pipeline.start(threads=4)
    yield runtime
    runtime.close()


def event(api: Client, auth: dict[str, str], event_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/integrations/events/{event_id}", headers=auth)
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()["event"]
    return detail


def test_published_event_is_delivered_signed_and_logged(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink
) -> None:
    integration = create_custom(api, tenant, sink.url("/hook"))
    secret = integration["signing_secret"]
    assert secret.startswith("whsec_")
    assert (
        "signing_secret" not in api.get(f"/v1/integrations/{integration['id']}", headers=tenant).json()["integration"]
    )
    [delivery] = publish(api, tenant, {"type": "order.created", "data": {"order_id": "o_1", "total": 42}})
    wait_for(lambda: all_in(live, [delivery], {"succeeded"}))
    [received] = sink.at("/hook")
    payload = Webhook(secret).verify(received.body, received.headers)
    assert payload["data"] == {"order_id": "o_1", "total": 42}
    assert payload["type"] == "order.created"
    assert received.headers["webhook-id"] == delivery
    detail = event(api, tenant, delivery)
    assert detail["attempts"] == 1
    [log] = detail["communication_logs"]
    assert log["response"]["status_code"] == 200
    assert log["request"]["headers"]["webhook-signature"] == "********"
    assert received.headers["webhook-signature"] not in str(detail)
    stored = api.get(f"/v1/integrations/events/{delivery}/payload", headers=tenant).json()
    assert stored["data"] == {"order_id": "o_1", "total": 42}
    assert stored["payload_ref"] == detail["payload_ref"]


def test_fan_out_matches_enabled_synchronizations_and_drops_duplicates(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink
) -> None:
    first = create_custom(api, tenant, sink.url("/a"))
    second = create_custom(api, tenant, sink.url("/b"), event_types=("order.created", "order.updated"))
    create_custom(api, tenant, sink.url("/c"), event_types=("order.updated",))
    create_custom(api, tenant, sink.url("/d"), enabled=False)
    off = create_custom(api, tenant, sink.url("/e"))
    api.put(
        f"/v1/integrations/{off['id']}",
        json={"synchronizations": [{"eventType": "order.created", "enabled": False}]},
        headers=tenant,
    )
    response = api.post(
        "/v1/events",
        json={
            "events": [
                {"type": "order.created", "id": "o-1", "data": {}},
                {"type": "order.created", "id": "o-1", "data": {}},
                {"type": "nobody.listens", "data": {}},
            ]
        },
        headers=tenant,
    ).json()["events"]
    assert [e["deliveries"] for e in response] == [2, 0, 0]
    assert [e["duplicate"] for e in response] == [False, True, False]
    assert response[0]["id"] == response[1]["id"]
    again = api.post("/v1/events", json={"type": "order.created", "id": "o-1"}, headers=tenant).json()["events"]
    assert again[0]["duplicate"] is True
    wait_for(lambda: all_in(live, response[0]["delivery_ids"], {"succeeded"}))
    assert (len(sink.at("/a")), len(sink.at("/b")), len(sink.at("/c")), len(sink.at("/d")), len(sink.at("/e"))) == (
        1,
        1,
        0,
        0,
        0,
    )
    filtered = api.post("/v1/integrations/events/filter", json={"integrationId": first["id"]}, headers=tenant)
    assert [e["integration_id"] for e in filtered.json()["events"]] == [first["id"]]
    by_twin = api.post("/v1/integrations/events/filter", json={"integration_id": second["id"]}, headers=tenant)
    assert len(by_twin.json()["events"]) == 1


def test_429_retry_after_is_honoured(api: Client, tenant: dict[str, str], live: Runtime, sink: Sink) -> None:
    sink.script("/rate", Reply(429, {"Retry-After": "2"}), Reply(200))
    create_custom(api, tenant, sink.url("/rate"), retry_schedule=[0, 0, 0])
    [delivery] = publish(api, tenant, {"type": "order.created", "data": {}})
    wait_for(lambda: all_in(live, [delivery], {"succeeded"}))
    first, second = sink.at("/rate")
    assert second.at - first.at >= 1.9
    assert second.headers["webhook-id"] == first.headers["webhook-id"] == delivery
    detail = event(api, tenant, delivery)
    assert detail["attempts"] == 2
    assert [log["response"]["status_code"] for log in detail["communication_logs"]] == [429, 200]


def test_permanent_4xx_is_not_retried(api: Client, tenant: dict[str, str], live: Runtime, sink: Sink) -> None:
    sink.script("/bad", default=Reply(400, body=b'{"error": "unknown field total"}'))
    create_custom(api, tenant, sink.url("/bad"))
    [delivery] = publish(api, tenant, {"type": "order.created", "data": {}})
    wait_for(lambda: all_in(live, [delivery], {"failed"}))
    detail = event(api, tenant, delivery)
    assert detail["attempts"] == 1
    assert "HTTP 400" in detail["error"]
    assert len(sink.at("/bad")) == 1


def test_refused_credentials_put_the_integration_in_error_until_a_delivery_succeeds(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink
) -> None:
    sink.script("/locked", Reply(401, body=b'{"error": "bad token"}'))
    integration = create_custom(
        api, tenant, sink.url("/locked"), settings={"authorizationHeader": "Bearer wrong-token-123"}
    )
    [refused] = publish(api, tenant, {"type": "order.created", "data": {}})
    wait_for(lambda: all_in(live, [refused], {"failed"}))
    shown = api.get(f"/v1/integrations/{integration['id']}", headers=tenant).json()["integration"]
    assert shown["status"] == "error"
    assert shown["error_message"] == (
        "Deliveries are refused: authentication failed (HTTP 401) — check settings.authorizationHeader"
    )
    [delivered] = publish(api, tenant, {"type": "order.created", "data": {}})
    wait_for(lambda: all_in(live, [delivered], {"succeeded"}))
    healed = api.get(f"/v1/integrations/{integration['id']}", headers=tenant).json()["integration"]
    assert (healed["status"], healed["error_message"]) == ("connected", None)


def test_5xx_is_retried_until_the_schedule_ends_then_retry_links_a_new_event(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink
) -> None:
    sink.script("/down", default=Reply(503))
    create_custom(api, tenant, sink.url("/down"), retry_schedule=[0, 1, 1])
    [delivery] = publish(api, tenant, {"type": "order.created", "data": {"n": 1}})
    wait_for(lambda: all_in(live, [delivery], {"failed"}))
    detail = event(api, tenant, delivery)
    assert detail["attempts"] == 3
    assert detail["error"].startswith("gave up after 3 attempts")
    assert len(sink.at("/down")) == 3
    failed = api.post("/v1/integrations/events/filter", json={"status": "failed"}, headers=tenant).json()["events"]
    assert [e["id"] for e in failed] == [delivery]
    sink.script("/down", default=Reply(200))
    retried = api.post(f"/v1/integrations/events/{delivery}/retry", headers=tenant)
    assert retried.status_code == 201
    new = retried.json()["event"]
    assert new["retry_of"] == delivery
    assert new["payload_ref"] == detail["payload_ref"]
    wait_for(lambda: all_in(live, [new["id"]], {"succeeded"}))
    assert event(api, tenant, delivery)["retries"] == [new["id"]]
    assert sink.at("/down")[-1].headers["webhook-id"] == new["id"]


def test_cancel_wins_over_a_late_worker(api: Client, tenant: dict[str, str], live: Runtime, sink: Sink) -> None:
    sink.script("/slow", Reply(200, delay=1.5))
    create_custom(api, tenant, sink.url("/slow"))
    [delivery] = publish(api, tenant, {"type": "order.created", "data": {}})
    wait_for(lambda: sink.at("/slow"))
    assert statuses(live, [delivery]) == {delivery: "processing"}
    cancelled = api.post(f"/v1/integrations/events/{delivery}/cancel", headers=tenant)
    assert cancelled.status_code == 200
    assert cancelled.json()["event"]["status"] == "cancelled"
    wait_for(lambda: event(api, tenant, delivery)["communication_logs"], timeout=10)
    assert statuses(live, [delivery]) == {delivery: "cancelled"}
    assert api.post(f"/v1/integrations/events/{delivery}/cancel", headers=tenant).status_code == 409


def test_a_worker_whose_event_was_taken_over_writes_nothing_over_it(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink
) -> None:
    """Its lease expired and another worker holds the event now: the late outcome is not written."""
    sink.script("/slow", Reply(200, delay=1.5))
    create_custom(api, tenant, sink.url("/slow"))
    [delivery] = publish(api, tenant, {"type": "order.created", "data": {}})
    wait_for(lambda: sink.at("/slow"))
    with live.engine.begin() as conn:  # as the reaper and another worker would have done meanwhile
        taken = conn.execute(
            sa.text("UPDATE events SET lease_token = 'another-worker' WHERE id = :id AND status = 'processing'"),
            {"id": delivery},
        ).rowcount
    assert taken == 1
    wait_for(lambda: event(api, tenant, delivery)["communication_logs"], timeout=10)  # the late attempt, logged
    with live.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT status, lease_token FROM events WHERE id = :id"), {"id": delivery}).one()
    assert tuple(row) == ("processing", "another-worker")


def test_secrets_never_appear_in_logs_or_answers(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sink.script("/echo", Reply(401, body=b"bad credentials: Bearer sek-ret-credential-0042"))
    integration = create_custom(
        api, tenant, sink.url("/echo"), settings={"authorizationHeader": "Bearer sek-ret-credential-0042"}
    )
    [delivery] = publish(api, tenant, {"type": "order.created", "data": {}})
    wait_for(lambda: all_in(live, [delivery], {"failed"}))
    assert sink.at("/echo")[0].headers["authorization"] == "Bearer sek-ret-credential-0042"
    detail = api.get(f"/v1/integrations/events/{delivery}", headers=tenant).text
    assert "sek-ret-credential-0042" not in detail
    assert "authentication failed (HTTP 401)" in detail
    assert "sek-ret-credential-0042" not in api.get(f"/v1/integrations/{integration['id']}", headers=tenant).text
    assert "sek-ret-credential-0042" not in caplog.text
    assert integration["signing_secret"] not in caplog.text


def test_another_tenants_events_are_not_found(api: Client, tenant: dict[str, str], live: Runtime, sink: Sink) -> None:
    create_custom(api, tenant, sink.url("/hook"))
    [delivery] = publish(api, tenant, {"type": "order.created", "data": {"secret": "mine"}})
    other = {"Authorization": make_tenant(live, "other")["Authorization"]}
    for method, suffix in (("GET", ""), ("GET", "/payload"), ("POST", "/retry"), ("POST", "/cancel")):
        assert api.request(method, f"/v1/integrations/events/{delivery}{suffix}", headers=other).status_code == 404
    assert api.post("/v1/integrations/events/filter", json={}, headers=other).json()["events"] == []
    assert publish(api, other, {"type": "order.created", "data": {}}) == []


def test_filter_rejects_bad_values_naming_the_field(api: Client, tenant: dict[str, str]) -> None:
    cases = [
        ({"from": "2025-02-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, "/from"),
        ({"status": "lost"}, "/status"),
        ({"status": ["failed", "lost"]}, "/status"),
        ({"limit": 501}, "/limit"),
        ({"limit": 0}, "/limit"),
        ({"from": "yesterday"}, "/from"),
    ]
    for body, pointer in cases:
        response = api.post("/v1/integrations/events/filter", json=body, headers=tenant)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["pointer"] == pointer, body


def test_publish_rejects_bad_events_with_pointers(api: Client, tenant: dict[str, str]) -> None:
    response = api.post(
        "/v1/events",
        json={"events": [{"type": "ok.event"}, {"data": {}}, {"type": "x", "occurred_at": "soon"}]},
        headers=tenant,
    )
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"/events/1/type", "/events/2/occurred_at"}
    too_many = api.post("/v1/events", json={"events": [{"type": "a"}] * 1001}, headers=tenant)
    assert too_many.status_code == 422


def test_a_lost_message_is_sent_again_by_the_reaper(fast_config: Config, sink: Sink) -> None:
    """Events accepted by a node whose messages are lost (it stopped) are delivered by another node."""
    first = Runtime.start(fast_config)  # no worker: its in-memory messages die with it
    auth = {"Authorization": make_tenant(first, "acme")["Authorization"]}
    with TestClient(create_app(first)) as client:
        create_custom(client, auth, sink.url("/hook"))
        deliveries = publish(client, auth, {"events": [{"type": "order.created", "data": {"n": i}} for i in range(5)]})
    first.close()
    second = Runtime.start(fast_config)
    second.pipeline.start(threads=2)
    try:
        wait_for(lambda: all_in(second, deliveries, {"succeeded"}))
        assert sorted(r.headers["webhook-id"] for r in sink.at("/hook")) == sorted(deliveries)
    finally:
        second.close()


def test_python_publish_api(live: Runtime, sink: Sink) -> None:
    import interlink

    auth = {"Authorization": make_tenant(live, "embedded")["Authorization"]}
    with TestClient(create_app(live)) as client:
        create_custom(client, auth, sink.url("/py"))
    with live.engine.connect() as conn:
        tenant_id = next(t.id for t in list_tenants(conn) if t.name == "embedded")
    [result] = interlink.publish(live, tenant_id, {"type": "order.created", "data": {"from": "python"}})
    wait_for(lambda: all_in(live, result.deliveries, {"succeeded"}))
    assert len(sink.at("/py")) == 1


def test_redirect_is_a_permanent_failure_and_stats_count_events(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink
) -> None:
    sink.script("/moved", default=Reply(302, {"Location": "https://elsewhere.example/hook"}))
    integration = create_custom(api, tenant, sink.url("/moved"))
    before = api.get(f"/v1/integrations/{integration['id']}", headers=tenant).json()["integration"]["sync_stats"]
    assert before == {"events_last_24h": 0, "events_total": 0, "earliest_event_at": None}
    deliveries = publish(api, tenant, {"events": [{"type": "order.created", "data": {}}] * 3})
    wait_for(lambda: all_in(live, deliveries, {"failed"}))
    detail = event(api, tenant, deliveries[0])
    assert detail["attempts"] == 1
    assert "redirected (HTTP 302 to https://elsewhere.example/hook); update settings.url" in detail["error"]
    stats = api.get(f"/v1/integrations/{integration['id']}", headers=tenant).json()["integration"]["sync_stats"]
    assert stats["events_total"] == 3
    assert stats["events_last_24h"] == 3
    assert stats["earliest_event_at"] is not None


def test_retry_schedule_starts_with_an_immediate_attempt(api: Client, tenant: dict[str, str]) -> None:
    response = api.post(
        "/v1/integrations",
        json={"service": "custom", "settings": {"url": "https://e.example"}, "retry_schedule": [5, 10]},
        headers=tenant,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/retry_schedule/0"


def test_a_lost_secret_key_fails_the_delivery_with_a_message(fast_config: Config, sink: Sink) -> None:
    from cryptography.fernet import Fernet

    first = Runtime.start(fast_config)
    auth = {"Authorization": make_tenant(first, "acme")["Authorization"]}
    with TestClient(create_app(first)) as client:
        create_custom(client, auth, sink.url("/hook"))
    first.close()
    other_key = dataclasses.replace(fast_config, secret_keys=(Fernet.generate_key().decode(),))
    second = Runtime.start(other_key)
    second.pipeline.start(threads=1)
    try:
        with TestClient(create_app(second)) as client:
            [delivery] = publish(client, auth, {"type": "order.created", "data": {}})
            wait_for(lambda: all_in(second, [delivery], {"failed"}))
            detail = event(client, auth, delivery)
        assert "INTERLINK_SECRET_KEY" in detail["error"]
        assert sink.at("/hook") == []
    finally:
        second.close()


def test_two_nodes_publishing_the_same_id_store_it_once(fast_config: Config) -> None:
    """A race on the platform's id between two API nodes: one stores it, the other reports a duplicate."""
    import threading

    from interlink.pipeline import EventIn
    from interlink.pipeline import publish as publish_events

    nodes = [Runtime.start(fast_config), Runtime.start(fast_config)]
    try:
        with nodes[0].engine.begin() as conn:
            tenant_id = create_tenant(conn, "racers")[0].id
        outcomes: list[bool] = []
        errors: list[BaseException] = []

        def publish_from(node: Runtime, external_id: str) -> None:
            try:
                [result] = publish_events(node, tenant_id, [EventIn(type="order.created", id=external_id)])
                outcomes.append(result.duplicate)
            except BaseException as exc:
                errors.append(exc)

        for round_ in range(15):
            threads = [threading.Thread(target=publish_from, args=(node, f"race-{round_}")) for node in nodes]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert errors == []
        assert sorted(outcomes).count(False) == 15
        assert sorted(outcomes).count(True) == 15
    finally:
        for node in nodes:
            node.close()


def test_stored_data_is_read_back_even_with_the_nan_older_payloads_hold() -> None:
    """Payloads written before data went through msgspec may hold ``NaN`` (``json.dumps`` wrote it)."""
    from interlink.pipeline.deliver import _load_data

    assert _load_data('{"a": [1, "\\u00e9", null]}') == {"a": [1, "é", None]}
    assert math.isnan(_load_data('{"a": NaN}')["a"])
