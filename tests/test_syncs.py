"""Pull syncs in process (the embedded default), on SQLite and PostgreSQL, against a local vendor API."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from interlink.api import create_app
from interlink.config import Config
from interlink.registry import ConnectorRegistry
from interlink.runtime import Runtime
from tests.conftest import make_tenant
from tests.pipeline_helpers import create_custom, wait_for
from tests.plugin_packages import install_test_packages
from tests.server import free_port
from tests.sink import Sink, running_sink
from tests.sync_helpers import (
    Client,
    acme_registry,
    create_acme,
    finished,
    integration,
    published_per_record,
    run,
    trigger,
)
from tests.vendor_records import API_KEY, Vendor, running_vendor


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
def live(config: Config, registry: ConnectorRegistry) -> Iterator[Runtime]:
    """A runtime with the acme_test connector whose in-process worker and reaper run."""
    fast = dataclasses.replace(config, redispatch_after=1.0, reaper_interval=0.2, lease_seconds=5.0)
    runtime = Runtime.start(fast, registry=registry)
    runtime.pipeline.start(threads=4)
    yield runtime
    runtime.close()


@pytest.fixture
def idle(config: Config, registry: ConnectorRegistry) -> Iterator[Client]:
    """An API whose runtime has no worker: triggered runs stay queued."""
    runtime = Runtime.start(config, registry=registry)
    with TestClient(create_app(runtime)) as c:
        c.app.state.tenant_auth = {"Authorization": make_tenant(runtime, "acme")["Authorization"]}
        yield c
    runtime.close()


def test_sync_publishes_records_fans_them_out_and_resumes_from_the_cursor(
    api: Client, tenant: dict[str, str], live: Runtime, vendor: Vendor, sink: Sink
) -> None:
    vendor.add(7)
    vendor.page_delay = 0.3
    create_custom(api, tenant, sink.url("/hook"), event_types=("acme.ping",))
    acme = create_acme(api, tenant, vendor.url)
    sync_id = trigger(api, tenant, acme["id"])
    assert sync_id.startswith("sync_")
    assert trigger(api, tenant, acme["id"]) == sync_id  # one sync per integration at a time
    wait_for(lambda: integration(api, tenant, acme["id"])["status"] == "syncing")
    done = wait_for(lambda: finished(api, tenant, acme["id"], sync_id))
    assert done["status"] == "succeeded", done
    assert done["records_read"] == 7
    assert done["trigger"] == "manual"
    assert done["started_at"] is not None
    assert done["finished_at"] is not None
    assert done["error"] is None
    after = integration(api, tenant, acme["id"])
    assert after["status"] == "connected"
    assert after["last_synced_at"] is not None
    assert after["error_message"] is None
    assert after["sync_stats"]["events_total"] == 7
    assert after["sync_stats"]["events_last_24h"] == 7
    assert after["sync_stats"]["earliest_event_at"] is not None
    assert published_per_record(live, acme["id"]) == {f"r-{i:04d}": 1 for i in range(1, 8)}
    wait_for(lambda: len(sink.at("/hook")) == 7)
    inbound = api.post(
        "/v1/integrations/events/filter", json={"integrationId": acme["id"], "limit": 50}, headers=tenant
    ).json()["events"]
    assert {(e["direction"], e["status"], e["event_type"]) for e in inbound} == {("inbound", "succeeded", "acme.ping")}

    vendor.add(2)
    vendor.afters.clear()
    second = trigger(api, tenant, acme["id"])
    assert second != sync_id
    done = wait_for(lambda: finished(api, tenant, acme["id"], second))
    assert done["status"] == "succeeded"
    assert done["records_read"] == 2  # only the new records
    assert vendor.afters[0] == "r-0007"
    assert published_per_record(live, acme["id"]) == {f"r-{i:04d}": 1 for i in range(1, 10)}
    wait_for(lambda: len(sink.at("/hook")) == 9)
    listed = api.get(f"/v1/integrations/{acme['id']}/syncs", headers=tenant).json()
    assert [r["id"] for r in listed["syncs"]] == [second, sync_id]
    assert listed["has_more"] is False
    paged = api.get(f"/v1/integrations/{acme['id']}/syncs?limit=1&page=2", headers=tenant).json()
    assert [r["id"] for r in paged["syncs"]] == [sync_id]


def test_a_bad_api_key_fails_with_an_actionable_message_and_a_later_success_clears_it(
    api: Client, tenant: dict[str, str], vendor: Vendor
) -> None:
    vendor.add(2)
    acme = create_acme(api, tenant, vendor.url, api_key="wrong-key")
    sync_id = trigger(api, tenant, acme["id"])
    done = wait_for(lambda: finished(api, tenant, acme["id"], sync_id))
    assert done["status"] == "failed"
    assert done["error"] == "Invalid API key — update settings.apiKey"
    broken = integration(api, tenant, acme["id"])
    assert broken["status"] == "error"
    assert broken["error_message"] == "Invalid API key — update settings.apiKey"
    assert broken["last_synced_at"] is None
    fixed = api.put(f"/v1/integrations/{acme['id']}", json={"settings": {"apiKey": API_KEY}}, headers=tenant)
    assert fixed.status_code == 200
    assert fixed.json()["integration"]["status"] == "error"  # until a sync proves the fix
    again = trigger(api, tenant, acme["id"])
    assert wait_for(lambda: finished(api, tenant, acme["id"], again))["status"] == "succeeded"
    healed = integration(api, tenant, acme["id"])
    assert (healed["status"], healed["error_message"]) == ("connected", None)
    assert healed["last_synced_at"] is not None


def test_a_record_without_an_id_fails_the_run_and_keeps_what_came_before(
    api: Client, tenant: dict[str, str], live: Runtime, vendor: Vendor
) -> None:
    vendor.add(6)  # two pages of three, each checkpointed
    vendor.records.append({"id": "", "n": 7})  # the connector is at fault: a record needs an id
    acme = create_acme(api, tenant, vendor.url)
    sync_id = trigger(api, tenant, acme["id"])
    done = wait_for(lambda: finished(api, tenant, acme["id"], sync_id))
    assert done["status"] == "failed"
    assert (
        done["error"]
        == "the acme_test connector is faulty: every record needs an 'id' (a string of 1 to 200 characters)"
    )
    assert done["records_read"] == 6
    assert published_per_record(live, acme["id"]) == {f"r-{i:04d}": 1 for i in range(1, 7)}
    assert integration(api, tenant, acme["id"])["status"] == "error"


def test_an_unreachable_vendor_ends_in_error_within_seconds(api: Client, tenant: dict[str, str]) -> None:
    acme = create_acme(api, tenant, f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    sync_id = trigger(api, tenant, acme["id"])
    done = wait_for(lambda: finished(api, tenant, acme["id"], sync_id), timeout=20)
    assert time.monotonic() - started < 15
    assert done["status"] == "failed"
    assert "connection to 127.0.0.1 failed" in done["error"]
    assert "gave up after 3 tries" in done["error"]
    shown = integration(api, tenant, acme["id"])
    assert shown["status"] == "error"
    assert shown["error_message"] == done["error"]


def test_cancel_stops_a_running_sync_at_its_next_checkpoint(
    api: Client, tenant: dict[str, str], live: Runtime, vendor: Vendor
) -> None:
    vendor.add(40)
    vendor.page_size, vendor.page_delay = 2, 0.3
    acme = create_acme(api, tenant, vendor.url)
    sync_id = trigger(api, tenant, acme["id"])
    wait_for(lambda: run(api, tenant, acme["id"], sync_id)["records_read"] >= 2)
    asked = api.post(f"/v1/integrations/{acme['id']}/syncs/{sync_id}/cancel", headers=tenant)
    assert asked.status_code == 200, asked.text
    assert asked.json()["sync"]["cancel_requested"] is True
    done = wait_for(lambda: finished(api, tenant, acme["id"], sync_id))
    assert done["status"] == "cancelled"
    assert done["records_read"] < 40
    assert integration(api, tenant, acme["id"])["status"] == "connected"
    assert api.post(f"/v1/integrations/{acme['id']}/syncs/{sync_id}/cancel", headers=tenant).status_code == 409
    kept = published_per_record(live, acme["id"])
    assert sum(kept.values()) == len(kept) == done["records_read"]
    vendor.page_delay = 0.0
    rest = trigger(api, tenant, acme["id"])  # goes on from the cursor the cancelled run left
    assert wait_for(lambda: finished(api, tenant, acme["id"], rest))["status"] == "succeeded"
    assert published_per_record(live, acme["id"]) == {f"r-{i:04d}": 1 for i in range(1, 41)}


def test_a_queued_sync_is_cancelled_at_once(idle: Client, vendor: Vendor) -> None:
    auth = idle.app.state.tenant_auth
    acme = create_acme(idle, auth, vendor.url)
    sync_id = trigger(idle, auth, acme["id"])
    assert run(idle, auth, acme["id"], sync_id)["status"] == "queued"
    assert trigger(idle, auth, acme["id"]) == sync_id
    cancelled = idle.post(f"/v1/integrations/{acme['id']}/syncs/{sync_id}/cancel", headers=auth)
    assert cancelled.status_code == 200
    assert cancelled.json()["sync"]["status"] == "cancelled"
    assert cancelled.json()["sync"]["finished_at"] is not None
    assert trigger(idle, auth, acme["id"]) != sync_id  # a new run may start


def test_a_disabled_integration_or_a_connector_without_sync_is_refused(idle: Client, vendor: Vendor) -> None:
    auth = idle.app.state.tenant_auth
    acme = create_acme(idle, auth, vendor.url)
    idle.put(f"/v1/integrations/{acme['id']}", json={"enabled": False}, headers=auth)
    refused = idle.post(f"/v1/integrations/{acme['id']}/sync", headers=auth)
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "disabled" in refused.json()["detail"]
    custom = create_custom(idle, auth, "https://example.com/hook")
    refused = idle.post(f"/v1/integrations/{custom['id']}/sync", headers=auth)
    assert refused.status_code == 409
    assert "does not sync" in refused.json()["detail"]
    assert idle.get(f"/v1/integrations/{custom['id']}/syncs", headers=auth).json()["syncs"] == []


def test_another_tenants_syncs_are_not_found(idle: Client, vendor: Vendor, config: Config) -> None:
    auth = idle.app.state.tenant_auth
    acme = create_acme(idle, auth, vendor.url)
    sync_id = trigger(idle, auth, acme["id"])
    runtime: Runtime = idle.app.state.runtime
    other = {"Authorization": make_tenant(runtime, "other")["Authorization"]}
    base = f"/v1/integrations/{acme['id']}"
    for method, path in (
        ("POST", "/sync"),
        ("GET", "/syncs"),
        ("GET", f"/syncs/{sync_id}"),
        ("POST", f"/syncs/{sync_id}/cancel"),
    ):
        response = idle.request(method, base + path, headers=other)
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert idle.get(f"{base}/syncs/sync_nope", headers=auth).status_code == 404
    assert run(idle, auth, acme["id"], sync_id)["status"] == "queued"
