"""Fan-out and the publish writer: what a publish sees of integration changes made just before it.

The writer thread keeps one connection between groups. On SQLite it reads the fan-out targets in each
transaction; on PostgreSQL it remembers them, and its ``INSERT`` checks them against the tables in the
same statement (writing again after a fresh read if they changed). Either way a change committed before
a publish, by this process or another one on the same database, is honoured by that publish.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from interlink.config import Config
from interlink.integrations import IntegrationChanges, update_integration
from interlink.pipeline import publish
from interlink.pipeline.fanout import GUARD, TargetCache, fanout_rows, fingerprint
from interlink.pipeline.publish import EventIn, PublishRequest, commit_requests
from interlink.runtime import Runtime
from interlink.store.integrations import Synchronization
from tests.pipeline_helpers import custom_for, new_tenant


def _targets(runtime: Runtime, tenant_id: str, event_type: str = "order.created") -> set[str]:
    """The integrations one published event fanned out to."""
    (published,) = publish(runtime, tenant_id, EventIn(event_type, {"n": 1}))
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT integration_id FROM events WHERE payload_ref = :p"), {"p": published.id}
        ).all()
    assert len(rows) == len(published.deliveries)
    return {row[0] for row in rows}


def test_integration_changes_right_before_a_publish_are_honoured(runtime: Runtime) -> None:
    tenant_id = new_tenant(runtime)
    assert _targets(runtime, tenant_id) == set()
    first = custom_for(runtime, tenant_id, "order.created")
    assert _targets(runtime, tenant_id) == {first}
    update_integration(runtime, tenant_id, first, IntegrationChanges(enabled=False))
    assert _targets(runtime, tenant_id) == set()
    update_integration(runtime, tenant_id, first, IntegrationChanges(enabled=True))
    second = custom_for(runtime, tenant_id, "order.created", "order.paid")
    assert _targets(runtime, tenant_id) == {first, second}
    update_integration(
        runtime, tenant_id, first, IntegrationChanges(synchronizations=[Synchronization("order.created", False)])
    )
    assert _targets(runtime, tenant_id) == {second}
    assert _targets(runtime, tenant_id, "order.paid") == {second}


@pytest.mark.postgres
def test_a_change_made_on_another_node_is_honoured_by_the_next_publish(
    two_pg_nodes: tuple[Runtime, Runtime],
) -> None:
    node_a, node_b = two_pg_nodes
    tenant_id = new_tenant(node_a)
    integration = custom_for(node_b, tenant_id, "order.created")
    assert _targets(node_a, tenant_id) == {integration}  # node A's writer now holds its connection
    update_integration(node_b, tenant_id, integration, IntegrationChanges(enabled=False))
    assert _targets(node_a, tenant_id) == set()
    update_integration(node_b, tenant_id, integration, IntegrationChanges(enabled=True))
    other = custom_for(node_b, tenant_id, "order.created")
    assert _targets(node_a, tenant_id) == {integration, other}


@pytest.fixture
def pg_runtime(config: Config, postgres_url: str) -> Iterator[Runtime]:
    """A runtime on a fresh PostgreSQL database, whatever the ``database_url`` parameter says."""
    runtime = Runtime.start(dataclasses.replace(config, database_url=postgres_url))
    yield runtime
    runtime.close()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_writer_recovers_when_its_connection_is_cut(pg_runtime: Runtime, pg_admin: sa.Engine) -> None:
    runtime = pg_runtime
    tenant_id = new_tenant(runtime)
    integration = custom_for(runtime, tenant_id, "order.created")
    assert _targets(runtime, tenant_id) == {integration}
    database = runtime.engine.url.database
    with pg_admin.connect() as conn:
        killed = conn.execute(
            sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :d"),
            {"d": database},
        ).scalar_one()
    assert killed >= 1
    assert _targets(runtime, tenant_id) == {integration}  # the group fails once, is retried, succeeds
    assert _targets(runtime, tenant_id) == {integration}  # and the writer works on a fresh connection


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_guard_reads_the_tables_as_the_writer_fingerprints_them(pg_runtime: Runtime) -> None:
    """Same rows, same text: ordering (code points on both sides) and separators in event types included."""
    runtime = pg_runtime
    tenant_id = new_tenant(runtime)
    types = ["order.created", "\u00e9t\u00e9.paid", "a,b", "a b:1", "Zed", "zed", "a"]
    custom_for(runtime, tenant_id, *types[:4])
    custom_for(runtime, tenant_id, *types[2:])
    guard = "SELECT " + GUARD.format(tenant="%(tenant)s", types="%(types)s", fingerprint="%(fingerprint)s")
    with runtime.engine.connect() as conn:
        rows = fanout_rows(conn, tenant_id, types)
        assert len(rows) == 9

        def fresh(remembered: list[tuple[str, str, str]], wanted: list[str]) -> bool:
            values = {"tenant": tenant_id, "types": wanted, "fingerprint": fingerprint(remembered)}
            return bool(conn.exec_driver_sql(guard, values).scalar())

        assert fresh(rows, types)
        assert fresh(list(reversed(rows)), types)
        assert not fresh(rows[1:], types)
        assert fresh([r for r in rows if r[2] == "a,b"], ["a,b"])
        assert not fresh([r for r in rows if r[2] == "a,b"], ["a,b", "a"])
        assert fresh([], ["nothing.subscribed"])


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_group_of_two_tenants_is_written_from_memory_until_one_of_them_changes(pg_runtime: Runtime) -> None:
    """The writer's path: remembered targets, one guard per tenant in one statement, a stale one re-read."""
    runtime = pg_runtime
    first_tenant = new_tenant(runtime, "first")
    second_tenant = new_tenant(runtime, "second")
    first = custom_for(runtime, first_tenant, "order.created")
    second = custom_for(runtime, second_tenant, "order.created", "order.paid")
    cache = TargetCache()

    def group() -> list[set[str]]:
        requests = [
            PublishRequest(first_tenant, [EventIn("order.created", {"n": 1})], None),
            PublishRequest(second_tenant, [EventIn("order.created", {"n": 2}), EventIn("order.paid", {})], None),
        ]
        with runtime.engine.connect() as conn:
            results, _ = commit_requests(runtime, requests, conn.execution_options(isolation_level="AUTOCOMMIT"), cache)
        return [set(p.deliveries) for result in results for p in result]

    def integrations_of(delivery_ids: set[str]) -> set[str]:
        with runtime.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT integration_id FROM events WHERE id = ANY(:ids)"), {"ids": list(delivery_ids)}
            )
            return {row[0] for row in rows}

    for _ in range(2):  # read, then from memory
        found = group()
        assert [integrations_of(ids) for ids in found] == [{first}, {second}, {second}]
    assert cache.rows(second_tenant, ["order.paid"]) == [(second, "custom", "order.paid")]
    update_integration(runtime, second_tenant, second, IntegrationChanges(enabled=False))
    third = custom_for(runtime, first_tenant, "order.created")
    found = group()
    assert [integrations_of(ids) for ids in found] == [{first, third}, set(), set()]
    with runtime.engine.connect() as conn:
        written = conn.execute(sa.text("SELECT count(*) FROM published_events")).scalar_one()
    assert written == 9  # three groups of three: the stale attempt wrote nothing
