"""Tenant notification webhooks (/v1/webhooks), on SQLite and PostgreSQL, delivered over real HTTP to a sink."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from interlink import notifications
from interlink.config import Config
from interlink.pipeline import sync as sync_pipeline
from interlink.registry import ConnectorRegistry
from interlink.runtime import Runtime
from interlink.store.tables import events
from tests.conftest import make_tenant
from tests.pipeline_helpers import all_in, create_custom, publish, statuses, wait_for
from tests.plugin_packages import install_test_packages
from tests.server import free_port
from tests.sink import Reply, Sink, running_sink
from tests.sync_helpers import Client, acme_registry, create_acme, finished, integration, trigger
from tests.vendor_records import Vendor, running_vendor

ALL_TYPES = ["integration.error", "integration.recovered", "sync.succeeded", "sync.failed", "event.failed"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_test_packages(tmp_path_factory.mktemp("site"), "interlink-test-good")


@pytest.fixture
def registry(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectorRegistry]:
    yield from acme_registry(site, monkeypatch)


@pytest.fixture
def vendor() -> Iterator[Vendor]:
    with running_vendor() as v:
        yield v


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as s:
        yield s


@pytest.fixture
def live(config: Config, registry: ConnectorRegistry, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """A runtime with the acme_test connector, its worker and reaper running, and short sync retry pauses."""
    monkeypatch.setattr(sync_pipeline, "RETRY_DELAYS", (0.05, 0.05))
    fast = dataclasses.replace(config, redispatch_after=1.0, reaper_interval=0.2, lease_seconds=5.0)
    runtime = Runtime.start(fast, registry=registry)
    runtime.pipeline.start(threads=4)
    yield runtime
    runtime.close()


def register(api: Client, auth: dict[str, str], url: str, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/webhooks", json={"url": url, **body}, headers=auth)
    assert response.status_code == 201, response.text
    webhook: dict[str, Any] = response.json()["webhook"]
    return webhook


def problems(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [(e["pointer"], e["rule"]) for e in response.json()["errors"]]


def received(sink: Sink, path: str, secret: str) -> list[dict[str, Any]]:
    """Every notification ``path`` got, each verified with ``secret`` (a bad signature raises)."""
    return [Webhook(secret).verify(r.body, r.headers) for r in sink.at(path)]


def types_at(sink: Sink, path: str, secret: str) -> list[str]:
    return [n["type"] for n in received(sink, path, secret)]


def deliveries(api: Client, auth: dict[str, str], webhook_id: str) -> list[dict[str, Any]]:
    response = api.post("/v1/integrations/events/filter", json={"integrationId": webhook_id}, headers=auth)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def test_register_list_get_rotate_delete(client: Client, auth: dict[str, str]) -> None:
    created = register(client, auth, "https://example.com/n", eventTypes=["integration.error", "sync.failed"])
    assert created["id"].startswith("wh_")
    assert created["signing_secret"].startswith("whsec_")
    assert created["event_types"] == ["integration.error", "sync.failed"]
    assert created["enabled"] is True
    assert created["url"] == "https://example.com/n"
    assert created["created_at"]
    every = register(client, auth, "http://127.0.0.1:9/n")  # no eventTypes: all five
    assert every["event_types"] == ALL_TYPES
    snake = register(client, auth, "https://example.com/s", event_types=["event.failed"])
    assert snake["event_types"] == ["event.failed"]

    listed = client.get("/v1/webhooks", headers=auth)
    assert listed.status_code == 200
    assert [w["id"] for w in listed.json()["webhooks"]] == [created["id"], every["id"], snake["id"]]
    assert all("signing_secret" not in w for w in listed.json()["webhooks"])
    one = client.get(f"/v1/webhooks/{created['id']}", headers=auth)
    assert one.status_code == 200
    assert one.json()["webhook"] == {k: v for k, v in created.items() if k != "signing_secret"}

    rotated = client.post(f"/v1/webhooks/{created['id']}/rotate-signing-secret", headers=auth)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["webhook_id"] == created["id"]
    assert rotated.json()["signing_secret"].startswith("whsec_")
    assert rotated.json()["signing_secret"] != created["signing_secret"]

    assert client.delete(f"/v1/webhooks/{created['id']}", headers=auth).status_code == 204
    assert client.get(f"/v1/webhooks/{created['id']}", headers=auth).status_code == 404
    assert client.delete(f"/v1/webhooks/{created['id']}", headers=auth).status_code == 404
    assert [w["id"] for w in client.get("/v1/webhooks", headers=auth).json()["webhooks"]] == [every["id"], snake["id"]]


def test_bad_input_is_a_422_naming_the_field(client: Client, auth: dict[str, str]) -> None:
    def post(body: Any) -> Any:
        return client.post("/v1/webhooks", json=body, headers=auth)

    assert problems(post({"url": "ftp://example.com/x"})) == [("/url", "format")]
    assert problems(post({"url": "https://"})) == [("/url", "format")]
    assert problems(post({"url": "not a url"})) == [("/url", "format")]
    assert problems(post({"eventTypes": ["sync.failed"]})) == [("/url", "required")]
    assert problems(post({"url": "https://e.com", "eventTypes": ["sync.failed", "order.created"]})) == [
        ("/eventTypes/1", "enum")
    ]
    assert "order.created" in post({"url": "https://e.com", "eventTypes": ["order.created"]}).text
    assert problems(post({"url": "https://e.com", "eventTypes": []})) == [("/eventTypes", "minItems")]
    assert problems(post({"url": "https://e.com", "eventTypes": ["sync.failed", "sync.failed"]})) == [
        ("/eventTypes/1", "uniqueItems")
    ]
    assert problems(post({"url": "https://e.com", "eventTypes": ["sync.failed"], "event_types": ["event.failed"]})) == [
        ("/eventTypes", "const")
    ]
    assert problems(post({"url": "https://e.com", "secret": "x"})) == [("/secret", "additionalProperties")]
    assert problems(post({"url": 42})) == [("/url", "type")]
    assert problems(post({"url": "https://e.com/" + "x" * 2000})) == [("/url", "maxLength")]
    assert client.post("/v1/webhooks", content=b"{", headers=auth).status_code == 400
    assert client.get("/v1/webhooks", headers=auth).json()["webhooks"] == []


def test_another_tenant_gets_404_and_sees_none_of_it(client: Client, auth: dict[str, str], runtime: Runtime) -> None:
    mine = register(client, auth, "https://example.com/n")
    other = {"Authorization": make_tenant(runtime, "globex")["Authorization"]}
    assert client.get(f"/v1/webhooks/{mine['id']}", headers=other).status_code == 404
    assert client.delete(f"/v1/webhooks/{mine['id']}", headers=other).status_code == 404
    assert client.post(f"/v1/webhooks/{mine['id']}/rotate-signing-secret", headers=other).status_code == 404
    assert client.get("/v1/webhooks", headers=other).json()["webhooks"] == []
    assert client.get(f"/v1/webhooks/{mine['id']}", headers=auth).status_code == 200
    assert client.get("/v1/webhooks").status_code == 401


def test_a_webhook_is_never_an_integration(client: Client, auth: dict[str, str]) -> None:
    webhook = register(client, auth, "https://example.com/n")
    regular = create_custom(client, auth, "https://example.com/hook")
    wid = webhook["id"]
    assert [i["id"] for i in client.get("/v1/integrations", headers=auth).json()["integrations"]] == [regular["id"]]
    filtered = client.get("/v1/integrations?type=custom&status=connected", headers=auth).json()["integrations"]
    assert [i["id"] for i in filtered] == [regular["id"]]
    assert all(
        i["id"] != wid
        for q in ("wh_", "custom", "Notification")
        for i in client.get(f"/v1/integrations/search?q={q}", headers=auth).json()["integrations"]
    )
    assert client.get(f"/v1/integrations/{wid}", headers=auth).status_code == 404
    assert client.put(f"/v1/integrations/{wid}", json={"enabled": False}, headers=auth).status_code == 404
    assert client.delete(f"/v1/integrations/{wid}", headers=auth).status_code == 404
    assert client.post(f"/v1/integrations/{wid}/sync", headers=auth).status_code == 404
    assert client.get(f"/v1/integrations/{wid}/syncs", headers=auth).status_code == 404
    assert client.post(f"/v1/integrations/{wid}/regenerate-key", headers=auth).status_code == 404
    assert client.post(f"/v1/integrations/{wid}/rotate-signing-secret", headers=auth).status_code == 404
    # ...and an integration is not a webhook
    assert client.get(f"/v1/webhooks/{regular['id']}", headers=auth).status_code == 404
    assert client.delete(f"/v1/webhooks/{regular['id']}", headers=auth).status_code == 404
    assert client.get(f"/v1/webhooks/{wid}", headers=auth).status_code == 200


def test_a_dead_vendor_notifies_error_then_recovery_signed(
    api: Client, tenant: dict[str, str], live: Runtime, vendor: Vendor, sink: Sink
) -> None:
    everything = register(api, tenant, sink.url("/all"))
    successes = register(api, tenant, sink.url("/ok"), eventTypes=["sync.succeeded"])
    secret = everything["signing_secret"]
    acme = create_acme(api, tenant, f"http://127.0.0.1:{free_port()}")

    first = trigger(api, tenant, acme["id"])
    assert wait_for(lambda: finished(api, tenant, acme["id"], first))["status"] == "failed"
    broken = integration(api, tenant, acme["id"])
    assert broken["status"] == "error"
    assert "connection to 127.0.0.1 failed" in broken["error_message"]
    wait_for(lambda: len(sink.at("/all")) == 2)
    by_type = {n["type"]: n for n in received(sink, "/all", secret)}
    assert set(by_type) == {"integration.error", "sync.failed"}
    error = by_type["integration.error"]
    assert error["data"] == {
        "integration_id": acme["id"],
        "service": "acme_test",
        "name": "Acme",
        "status": "error",
        "error_message": broken["error_message"],
        "sync_id": first,
    }
    assert error["timestamp"]
    assert {r.headers["webhook-id"] for r in sink.at("/all")} == {n["id"] for n in by_type.values()}
    assert by_type["sync.failed"]["data"]["error_message"] == broken["error_message"]
    assert by_type["sync.failed"]["data"]["records_read"] == 0
    with pytest.raises(WebhookVerificationError):  # signed with this endpoint's secret, not another's
        received(sink, "/all", successes["signing_secret"])

    again = trigger(api, tenant, acme["id"])  # still dead: a sync failure, but no new error
    assert wait_for(lambda: finished(api, tenant, acme["id"], again))["status"] == "failed"
    wait_for(lambda: len(sink.at("/all")) == 3)

    vendor.add(2)
    fixed = api.put(f"/v1/integrations/{acme['id']}", json={"settings": {"baseUrl": vendor.url}}, headers=tenant)
    assert fixed.status_code == 200, fixed.text
    healed = trigger(api, tenant, acme["id"])
    assert wait_for(lambda: finished(api, tenant, acme["id"], healed))["status"] == "succeeded"
    wait_for(lambda: len(sink.at("/all")) == 5)
    assert types_at(sink, "/all", secret)[2] == "sync.failed"
    recovered = {n["type"]: n for n in received(sink, "/all", secret)[3:]}
    assert set(recovered) == {"integration.recovered", "sync.succeeded"}
    assert recovered["integration.recovered"]["data"]["status"] == "connected"
    assert recovered["integration.recovered"]["data"]["error_message"] is None
    assert recovered["sync.succeeded"]["data"]["records_read"] == 2
    wait_for(lambda: len(sink.at("/ok")) == 1)
    assert types_at(sink, "/ok", successes["signing_secret"]) == ["sync.succeeded"]

    followed = deliveries(api, tenant, everything["id"])
    assert len(followed) == 5
    assert {e["event_type"] for e in followed} == {
        "integration.error",
        "integration.recovered",
        "sync.succeeded",
        "sync.failed",
    }
    assert all(e["integration_id"] == everything["id"] and e["direction"] == "outbound" for e in followed)
    wait_for(lambda: all(e["status"] == "succeeded" for e in deliveries(api, tenant, everything["id"])))
    detail = api.get(f"/v1/integrations/events/{followed[0]['id']}", headers=tenant).json()["event"]
    assert detail["communication_logs"][0]["request"]["url"] == sink.url("/all")
    assert integration(api, tenant, acme["id"])["sync_stats"]["events_total"] == 2  # notifications are not its own


def test_a_failed_event_is_notified_but_a_failed_notification_is_not(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink
) -> None:
    sink.script("/refuses", default=Reply(400, body=b"bad request"))
    sink.script("/broken-endpoint", default=Reply(410, body=b"gone"))
    watcher = register(api, tenant, sink.url("/watch"), eventTypes=["event.failed"])
    broken = register(api, tenant, sink.url("/broken-endpoint"), eventTypes=["event.failed"])
    custom = create_custom(api, tenant, sink.url("/refuses"))
    [delivery] = publish(api, tenant, {"type": "order.created", "data": {"order_id": "o_1"}})
    wait_for(lambda: all_in(live, [delivery], {"failed"}))

    wait_for(lambda: len(sink.at("/watch")) == 1)
    [notice] = received(sink, "/watch", watcher["signing_secret"])
    assert notice["type"] == "event.failed"
    data = notice["data"]
    assert (data["integration_id"], data["event_id"], data["event_type"]) == (custom["id"], delivery, "order.created")
    assert data["service"] == "custom"
    assert data["status"] == "connected"
    assert data["attempts"] == 1
    assert "400" in data["error_message"]

    [to_broken] = deliveries(api, tenant, broken["id"])  # the same notice, refused by the other endpoint
    wait_for(lambda: all_in(live, [to_broken["id"]], {"failed"}))
    with live.engine.connect() as conn:  # a notification of that failure would be in the same commit
        about = conn.execute(sa.select(events.c.event_type, events.c.integration_id)).all()
    assert sorted(about) == sorted(
        [("order.created", custom["id"]), ("event.failed", watcher["id"]), ("event.failed", broken["id"])]
    )
    assert len(sink.at("/watch")) == 1


def test_notification_deliveries_can_be_cancelled_and_retried(api: Client, live: Runtime, sink: Sink) -> None:
    tenant = make_tenant(live, "acme")
    auth = {"Authorization": tenant["Authorization"]}
    sink.script("/flaky", Reply(503, body=b"busy"))
    endpoint = register(api, auth, sink.url("/flaky"), eventTypes=["sync.failed"])
    data = {"integration_id": "int_x", "service": "acme_test", "name": "Acme", "status": "error"}
    assert notifications.notify(live, None, tenant["id"], "integration.error", data) == []  # not subscribed
    [first] = notifications.notify(live, None, tenant["id"], "sync.failed", data)
    wait_for(lambda: statuses(live, [first])[first] == "queued" and len(sink.at("/flaky")) == 1)  # next in 5 s
    cancelled = api.post(f"/v1/integrations/events/{first}/cancel", headers=auth)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["event"]["status"] == "cancelled"

    rotated = api.post(f"/v1/webhooks/{endpoint['id']}/rotate-signing-secret", headers=auth).json()
    retried = api.post(f"/v1/integrations/events/{first}/retry", headers=auth)
    assert retried.status_code == 201, retried.text
    again = retried.json()["event"]
    assert again["retry_of"] == first
    assert again["integration_id"] == endpoint["id"]
    wait_for(lambda: all_in(live, [again["id"]], {"succeeded"}))
    second = sink.at("/flaky")[1]
    payload = Webhook(rotated["signing_secret"]).verify(second.body, second.headers)
    assert (payload["type"], payload["data"]) == ("sync.failed", data)
    assert second.headers["webhook-id"] == again["id"]
    assert [e["id"] for e in deliveries(api, auth, endpoint["id"])] == [again["id"], first]

    other = {"Authorization": make_tenant(live, "globex")["Authorization"]}
    assert deliveries(api, other, endpoint["id"]) == []
    assert api.post(f"/v1/integrations/events/{again['id']}/retry", headers=other).status_code == 404
    assert api.delete(f"/v1/webhooks/{endpoint['id']}", headers=auth).status_code == 204
    assert deliveries(api, auth, endpoint["id"]) == []  # its deliveries went with it


def test_notify_refuses_an_unknown_type(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="unknown notification type"):
        notifications.notify(runtime, None, "tnt_x", "order.created", {})


def test_the_payload_is_stored_once_as_published(api: Client, live: Runtime, sink: Sink) -> None:
    tenant = make_tenant(live, "acme")
    auth = {"Authorization": tenant["Authorization"]}
    one = register(api, auth, sink.url("/a"), eventTypes=["sync.succeeded"])
    two = register(api, auth, sink.url("/b"), eventTypes=["sync.succeeded"])
    ids = notifications.notify(live, None, tenant["id"], "sync.succeeded", {"records_read": 3})
    assert len(ids) == 2
    wait_for(lambda: all_in(live, ids, {"succeeded"}))
    refs = {api.get(f"/v1/integrations/events/{i}", headers=auth).json()["event"]["payload_ref"] for i in ids}
    assert len(refs) == 1
    stored = api.get(f"/v1/integrations/events/{ids[0]}/payload", headers=auth).json()
    assert (stored["event_type"], stored["data"]) == ("sync.succeeded", {"records_read": 3})
    bodies = [json.loads(sink.at(p)[0].body) for p in ("/a", "/b")]
    assert bodies[0]["data"] == bodies[1]["data"] == {"records_read": 3}
    assert {bodies[0]["id"], bodies[1]["id"]} == set(ids)
    assert one["id"] != two["id"]
