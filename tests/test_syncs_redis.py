"""Syncs at scale: API node + ``interlink worker`` processes + real Redis + PostgreSQL.

A worker killed with SIGKILL mid-sync leaves its run ``running``; once the lease expires a fresh worker's
reaper requeues it and the run resumes from its last checkpoint, with no record lost and none twice.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from litestar.testing import TestClient

from interlink.api import create_app
from interlink.registry import ConnectorRegistry
from interlink.runtime import Runtime
from interlink.store.tables import sync_records
from tests.conftest import make_tenant
from tests.pipeline_helpers import create_custom, wait_for
from tests.plugin_packages import install_test_packages
from tests.redis_helpers import MACHINE_REDIS, require_redis, worker_process
from tests.sink import Sink, running_sink
from tests.sync_helpers import acme_registry, create_acme, finished, published_per_record, run, trigger
from tests.test_pipeline_redis import node_config, worker_env
from tests.vendor_records import Vendor, running_vendor

pytestmark = pytest.mark.postgres


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return install_test_packages(tmp_path / "site", "interlink-test-good")


@pytest.fixture
def registry(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectorRegistry]:
    yield from acme_registry(site, monkeypatch)


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as s:
        yield s


def test_a_sigkilled_sync_worker_resumes_with_no_gap_and_no_duplicate(
    tmp_path: Path, postgres_url: str, site: Path, registry: ConnectorRegistry, sink: Sink
) -> None:
    require_redis().flushdb()
    cfg = node_config(tmp_path, postgres_url, MACHINE_REDIS, Fernet.generate_key().decode())
    env = {**worker_env(cfg), "PYTHONPATH": str(site)}
    api_node = Runtime.start(cfg, registry=registry)  # enqueues only: no worker in this process
    vendor = Vendor(page_size=2, page_delay=0.25)
    vendor.add(40)
    try:
        with running_vendor(vendor), TestClient(create_app(api_node)) as client:
            auth = {"Authorization": make_tenant(api_node, "acme")["Authorization"]}
            create_custom(client, auth, sink.url("/hook"), event_types=("acme.ping",))
            acme = create_acme(client, auth, vendor.url)
            sync_id = trigger(client, auth, acme["id"])
            with worker_process(env) as doomed:
                wait_for(lambda: run(client, auth, acme["id"], sync_id)["records_read"] >= 8, timeout=30)
                os.killpg(doomed.pid, signal.SIGKILL)
                doomed.wait()
            cut = run(client, auth, acme["id"], sync_id)
            assert cut["status"] == "running", "the worker was killed before it could finish"
            assert cut["records_read"] < 40
            requests_before = len(vendor.afters)
            with worker_process(env):
                done = wait_for(lambda: finished(client, auth, acme["id"], sync_id), timeout=60)
                assert done["status"] == "succeeded", done
                wait_for(lambda: len({r.body for r in sink.at("/hook")}) == 40, timeout=40)
            resumed_at = vendor.afters[requests_before]
            assert resumed_at is not None, "the resumed run started over instead of from its checkpoint"
    finally:
        api_node.close()
    published = published_per_record(api_node, acme["id"])
    assert published == {f"r-{i:04d}": 1 for i in range(1, 41)}  # every record, each once
    with api_node.engine.connect() as conn:
        seen = conn.execute(sa.select(sa.func.count()).where(sync_records.c.integration_id == acme["id"])).scalar()
    assert seen == 40
