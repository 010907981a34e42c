"""The sync scheduler, on SQLite and PostgreSQL: due integrations get one run per interval across nodes."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from interlink.config import Config
from interlink.integrations import IntegrationChanges, NewIntegration, create_integration, update_integration
from interlink.pipeline.scheduler import schedule_due
from interlink.pipeline.sync import run_sync
from interlink.registry import ConnectorRegistry
from interlink.runtime import Runtime
from interlink.store.tables import integrations, sync_runs
from tests.conftest import make_tenant
from tests.plugin_packages import install_test_packages
from tests.sync_helpers import acme_registry
from tests.vendor_records import API_KEY, Vendor, running_vendor

HOUR = 3600


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
def node(config: Config, registry: ConnectorRegistry) -> Iterator[Runtime]:
    """A runtime with the acme_test connector and no worker: scheduled runs stay queued."""
    runtime = Runtime.start(config, registry=registry)
    yield runtime
    runtime.close()


def acme(runtime: Runtime, tenant_id: str, base_url: str, **options: object) -> str:
    settings = {"apiKey": options.pop("api_key", API_KEY), "baseUrl": base_url}
    integration, _ = create_integration(
        runtime,
        tenant_id,
        NewIntegration(service="acme_test", settings=settings, **options),  # type: ignore[arg-type]
    )
    return integration.id


def runs_of(runtime: Runtime, integration_id: str) -> list[sa.Row[tuple[str, str, str]]]:
    with runtime.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(sync_runs.c.id, sync_runs.c.status, sync_runs.c.trigger).where(
                    sync_runs.c.integration_id == integration_id
                )
            ).all()
        )


def slot(runtime: Runtime, integration_id: str) -> tuple[datetime | None, int]:
    with runtime.engine.connect() as conn:
        row = conn.execute(
            sa.select(integrations.c.next_sync_at, integrations.c.sync_failures).where(
                integrations.c.id == integration_id
            )
        ).one()
    return row.next_sync_at, row.sync_failures


def test_a_due_integration_gets_one_run_per_interval(node: Runtime, vendor: Vendor) -> None:
    tenant = make_tenant(node, "acme")["id"]
    due = acme(node, tenant, vendor.url)
    custom_interval = acme(node, tenant, vendor.url, sync_interval=120)
    disabled = acme(node, tenant, vendor.url, enabled=False)
    now = datetime.now(UTC)

    created = schedule_due(node, now)
    assert len(created) == 2
    [run] = runs_of(node, due)
    assert (run.id in created, run.status, run.trigger) == (True, "queued", "schedule")
    assert {r.id for r in runs_of(node, due) + runs_of(node, custom_interval)} == set(created)
    assert runs_of(node, disabled) == []
    assert slot(node, due) == (now + timedelta(seconds=HOUR), 0)  # the manifest's default interval
    assert slot(node, custom_interval) == (now + timedelta(seconds=120), 0)  # the integration's own
    assert slot(node, disabled) == (None, 0)

    assert schedule_due(node, now) == []  # the same interval: nothing more
    assert schedule_due(node, now + timedelta(seconds=HOUR - 1)) == []
    assert len(runs_of(node, due)) == 1
    # the next slot of custom_interval has come, but its first run is still queued: no second run
    assert schedule_due(node, now + timedelta(seconds=121)) == []
    assert len(runs_of(node, custom_interval)) == 1


def test_no_interval_or_no_sync_capability_is_never_scheduled(
    config: Config, registry: ConnectorRegistry, vendor: Vendor
) -> None:
    registered = registry.connectors["acme_test"]
    without = ConnectorRegistry(
        connectors={
            **registry.connectors,
            "acme_test": dataclasses.replace(
                registered, manifest=dataclasses.replace(registered.manifest, default_sync_interval=None)
            ),
        }
    )
    runtime = Runtime.start(config, registry=without)
    try:
        tenant = make_tenant(runtime, "acme")["id"]
        no_interval = acme(runtime, tenant, vendor.url)
        create_integration(runtime, tenant, NewIntegration(service="custom", settings={"url": "https://x.test/h"}))
        assert schedule_due(runtime) == []
        assert runs_of(runtime, no_interval) == []
        assert slot(runtime, no_interval) == (None, 0)
        with runtime.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(sync_runs)).scalar() == 0
    finally:
        runtime.close()


def test_two_nodes_at_once_start_each_sync_once(config: Config, registry: ConnectorRegistry, vendor: Vendor) -> None:
    nodes = [Runtime.start(config, registry=registry) for _ in range(2)]
    try:
        tenant = make_tenant(nodes[0], "acme")["id"]
        ids = [acme(nodes[0], tenant, vendor.url) for _ in range(12)]
        now = datetime.now(UTC)
        barrier = threading.Barrier(4)
        results: list[list[str]] = []
        errors: list[BaseException] = []

        def scheduler(runtime: Runtime) -> None:
            try:
                barrier.wait()
                results.append(schedule_due(runtime, now))
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=scheduler, args=(n,)) for n in (*nodes, *nodes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        created = [run_id for result in results for run_id in result]
        assert len(created) == len(set(created)) == len(ids)
        with nodes[1].engine.connect() as conn:
            per_integration = Counter(conn.execute(sa.select(sync_runs.c.integration_id)).scalars())
        assert per_integration == dict.fromkeys(ids, 1)
    finally:
        for n in nodes:
            n.close()


def test_a_failed_run_pushes_the_next_slot_further_and_a_success_resets_it(node: Runtime, vendor: Vendor) -> None:
    vendor.add(2)
    tenant = make_tenant(node, "acme")["id"]
    broken = acme(node, tenant, vendor.url, api_key="wrong-key")
    now = datetime.now(UTC)
    [first] = schedule_due(node, now)
    run_sync(node, first)
    assert runs_of(node, broken)[0].status == "failed"
    assert slot(node, broken) == (now + timedelta(seconds=HOUR), 1)

    later = now + timedelta(seconds=HOUR)
    [second] = schedule_due(node, later)
    assert slot(node, broken)[0] == later + timedelta(seconds=2 * HOUR)  # growing intervals
    run_sync(node, second)
    assert slot(node, broken)[1] == 2
    third_at = later + timedelta(seconds=2 * HOUR)
    [third] = schedule_due(node, third_at)
    assert slot(node, broken)[0] == third_at + timedelta(seconds=4 * HOUR)

    with node.engine.begin() as conn:  # the key is fixed: a success brings the plain interval back
        conn.execute(sa.delete(sync_runs).where(sync_runs.c.id == third))
    update_integration(node, tenant, broken, IntegrationChanges(settings={"apiKey": API_KEY}))
    fourth_at = third_at + timedelta(seconds=4 * HOUR)
    [fourth] = schedule_due(node, fourth_at)
    run_sync(node, fourth)
    assert slot(node, broken)[1] == 0
    fifth_at = fourth_at + timedelta(seconds=8 * HOUR)
    assert schedule_due(node, fifth_at)
    assert slot(node, broken)[0] == fifth_at + timedelta(seconds=HOUR)


def test_the_next_slot_survives_a_restart(config: Config, registry: ConnectorRegistry, vendor: Vendor) -> None:
    first = Runtime.start(config, registry=registry)
    tenant = make_tenant(first, "acme")["id"]
    integration_id = acme(first, tenant, vendor.url)
    now = datetime.now(UTC)
    assert len(schedule_due(first, now)) == 1
    first.close()

    restarted = Runtime.start(config, registry=registry)
    try:
        assert slot(restarted, integration_id) == (now + timedelta(seconds=HOUR), 0)
        with restarted.engine.begin() as conn:  # the run finished meanwhile
            conn.execute(sync_runs.update().values(status="succeeded"))
        assert schedule_due(restarted, now + timedelta(seconds=60)) == []
        assert len(schedule_due(restarted, now + timedelta(seconds=HOUR))) == 1
    finally:
        restarted.close()
