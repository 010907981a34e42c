"""Publishes made on an event loop on PostgreSQL: the loop commits their groups itself.

The loop writes a group from the remembered fan-out behind the statement's guard; a group it cannot
write that way (a fan-out not yet read or changed since, an external id, a failed statement) goes to the
writer thread. Either way, what a publish answers is what is stored, and a change committed before a
publish, on any node, is honoured by it.
"""

from __future__ import annotations

import asyncio
import gc
import time

import pytest
import sqlalchemy as sa

from interlink.integrations import IntegrationChanges, update_integration
from interlink.pipeline import Published, publish_async
from interlink.pipeline.publish import EventIn
from interlink.pipeline.publish_loop import APPLICATION_NAME
from interlink.runtime import Runtime
from tests.pipeline_helpers import custom_for, new_tenant

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)]


def _publish(runtime: Runtime, tenant_id: str, events: list[list[EventIn]]) -> list[Published]:
    """Publish each list of events concurrently on one event loop, as the API's requests are."""
    return asyncio.run(_on_the_loop(runtime, tenant_id, events))


async def _on_the_loop(runtime: Runtime, tenant_id: str, events: list[list[EventIn]]) -> list[Published]:
    publishes = asyncio.gather(*(publish_async(runtime, tenant_id, batch) for batch in events))
    results = await asyncio.wait_for(publishes, timeout=30)
    return [published for result in results for published in result]


def _single(count: int, event_type: str = "order.created") -> list[list[EventIn]]:
    return [[EventIn(event_type, {"n": i})] for i in range(count)]


def _stored(runtime: Runtime, published: list[Published]) -> dict[str, set[str]]:
    """For each published event found in the payload store: the integrations its deliveries are for."""
    with runtime.engine.connect() as conn:
        payloads = conn.execute(
            sa.text("SELECT id FROM published_events WHERE id = ANY(:ids)"), {"ids": [p.id for p in published]}
        ).scalars()
        found: dict[str, set[str]] = {payload_id: set() for payload_id in payloads}
        rows = conn.execute(
            sa.text("SELECT payload_ref, id, integration_id FROM events WHERE payload_ref = ANY(:ids)"),
            {"ids": list(found)},
        )
        by_payload = {p.id: set(p.deliveries) for p in published}
        for payload_ref, event_id, integration_id in rows:
            assert event_id in by_payload[payload_ref]  # the delivery the publish answered with
            found[payload_ref].add(integration_id)
    return found


_LOOP_BACKENDS = "FROM pg_stat_activity WHERE application_name = :a AND datname = :d"


def _loop_backends(runtime: Runtime) -> dict[str, str | None]:
    return {"a": APPLICATION_NAME, "d": runtime.engine.url.database}


def _loop_connections(runtime: Runtime, expected: int) -> int:
    """How many loops' connections are open, once it is ``expected`` (a backend ends soon after a close)."""
    deadline = time.monotonic() + 5
    while True:
        with runtime.engine.connect() as conn:
            found = conn.execute(sa.text(f"SELECT count(*) {_LOOP_BACKENDS}"), _loop_backends(runtime)).scalar_one()
        if found == expected or time.monotonic() > deadline:
            return int(found)
        time.sleep(0.05)


def test_each_loop_has_one_connection_closed_with_the_loop_or_the_runtime(
    two_pg_nodes: tuple[Runtime, Runtime],
) -> None:
    runtime, _ = two_pg_nodes
    tenant_id = new_tenant(runtime)
    custom_for(runtime, tenant_id, "order.created")

    async def publish_twice() -> int:
        await _on_the_loop(runtime, tenant_id, _single(2))
        await _on_the_loop(runtime, tenant_id, _single(2))
        return _loop_connections(runtime, 1)

    assert [asyncio.run(publish_twice()) for _ in range(3)] == [1, 1, 1]  # a loop each time, as asyncio.run makes
    gc.collect()
    assert _loop_connections(runtime, 0) == 0

    async def publish_then_stop() -> tuple[int, int]:
        await publish_twice()
        before = _loop_connections(runtime, 1)
        runtime.pipeline.coalescer.stop()
        return before, _loop_connections(runtime, 0)

    assert asyncio.run(publish_then_stop()) == (1, 0)


def test_a_loop_commits_its_publishes_in_groups_and_answers_what_it_stored(
    two_pg_nodes: tuple[Runtime, Runtime],
) -> None:
    runtime, _ = two_pg_nodes
    tenant_id = new_tenant(runtime)
    first = custom_for(runtime, tenant_id, "order.created")
    second = custom_for(runtime, tenant_id, "order.created", "order.paid")

    async def publish() -> tuple[int, list[Published], int]:
        await _on_the_loop(runtime, tenant_id, _single(1) + _single(1, "order.paid"))  # the thread reads the fan-out
        before = _loop_connections(runtime, 0)
        published = await _on_the_loop(runtime, tenant_id, _single(40) + _single(5, "order.paid"))
        return before, published, _loop_connections(runtime, 1)

    before, published, after = asyncio.run(publish())
    assert (before, after) == (0, 1)  # written by the loop, on a connection of its own
    stored = _stored(runtime, published)
    assert len(stored) == 45
    assert [stored[p.id] for p in published] == [{first, second}] * 40 + [{second}] * 5
    with runtime.engine.connect() as conn:  # fewer transactions than publishes
        transactions = conn.execute(
            sa.text("SELECT count(DISTINCT xmin::text) FROM published_events WHERE id = ANY(:ids)"),
            {"ids": [p.id for p in published]},
        ).scalar_one()
    assert transactions < 45


def test_a_change_made_on_another_node_is_honoured_by_the_loops_next_publish(
    two_pg_nodes: tuple[Runtime, Runtime],
) -> None:
    node_a, node_b = two_pg_nodes
    tenant_id = new_tenant(node_a)
    integration = custom_for(node_b, tenant_id, "order.created")

    def targets() -> set[str]:
        published = _publish(node_a, tenant_id, _single(3))
        stored = _stored(node_a, published)
        assert len(stored) == 3
        (found,) = {frozenset(integrations) for integrations in stored.values()}
        return set(found)

    assert targets() == {integration}
    assert targets() == {integration}  # from memory, on the loop
    update_integration(node_b, tenant_id, integration, IntegrationChanges(enabled=False))
    assert targets() == set()
    update_integration(node_b, tenant_id, integration, IntegrationChanges(enabled=True))
    other = custom_for(node_b, tenant_id, "order.created")
    assert targets() == {integration, other}


def test_a_loop_whose_connection_is_cut_loses_no_publish(
    two_pg_nodes: tuple[Runtime, Runtime], pg_admin: sa.Engine
) -> None:
    runtime, _ = two_pg_nodes
    tenant_id = new_tenant(runtime)
    integration = custom_for(runtime, tenant_id, "order.created")

    async def cut_in_between() -> tuple[list[Published], list[Published]]:
        await _on_the_loop(runtime, tenant_id, _single(2))
        await _on_the_loop(runtime, tenant_id, _single(2))
        assert _loop_connections(runtime, 1) == 1
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f"SELECT pg_terminate_backend(pid) {_LOOP_BACKENDS}"), _loop_backends(runtime))
        assert _loop_connections(runtime, 0) == 0
        failed_on_the_loop = await _on_the_loop(runtime, tenant_id, _single(10))  # the writer thread writes them
        again = await _on_the_loop(runtime, tenant_id, _single(10))  # the loop, on a new connection
        assert _loop_connections(runtime, 1) == 1
        return failed_on_the_loop, again

    for published in asyncio.run(cut_in_between()):
        assert _stored(runtime, published) == {p.id: {integration} for p in published}


def test_external_ids_published_on_a_loop_are_recognised_as_duplicates(
    two_pg_nodes: tuple[Runtime, Runtime],
) -> None:
    runtime, _ = two_pg_nodes
    tenant_id = new_tenant(runtime)
    custom_for(runtime, tenant_id, "order.created")
    _publish(runtime, tenant_id, _single(2))
    batches = [[EventIn("order.created", {"n": i}, id=f"order-{i}")] for i in range(5)]
    first = _publish(runtime, tenant_id, batches)
    again = _publish(runtime, tenant_id, batches + _single(3))
    assert [p.duplicate for p in first] == [False] * 5
    assert [p.duplicate for p in again] == [True] * 5 + [False] * 3
    assert [p.id for p in again[:5]] == [p.id for p in first]
    assert all(p.deliveries == [] for p in again[:5])
