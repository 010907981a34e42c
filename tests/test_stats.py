"""``sync_stats`` from hourly counters, on SQLite and PostgreSQL: every figure equals a COUNT/MIN over ``events``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from interlink.pipeline.inbound import write_inbound
from interlink.pipeline.publish import EventIn
from interlink.runtime import Runtime
from interlink.stats import integration_stats, stats_query
from interlink.store.tables import event_counts, events
from tests.conftest import make_tenant
from tests.pipeline_helpers import create_custom

Client = TestClient  # type: ignore[type-arg]
SINK = "http://127.0.0.1:9/hook"  # nothing is delivered: the runtime fixture starts no worker


def truth(runtime: Runtime, tenant_id: str, integration_id: str, now: datetime) -> dict[str, Any]:
    """The figures the slow way: COUNT and MIN over the events table."""
    mine = (events.c.tenant_id == tenant_id, events.c.integration_id == integration_id)
    with runtime.engine.connect() as conn:
        total, earliest = conn.execute(sa.select(sa.func.count(), sa.func.min(events.c.created_at)).where(*mine)).one()
        recent = conn.execute(
            sa.select(sa.func.count()).where(*mine, events.c.created_at >= now - timedelta(hours=24))
        ).scalar_one()
    if earliest is not None:
        earliest = datetime.fromisoformat(str(earliest)).replace(tzinfo=UTC) if earliest.tzinfo is None else earliest
    return {"events_last_24h": recent, "events_total": total, "earliest_event_at": earliest}


def figures(runtime: Runtime, tenant_id: str, integration_id: str, now: datetime) -> dict[str, Any]:
    with runtime.engine.connect() as conn:
        return integration_stats(conn, tenant_id, integration_id, now).as_dict()


def api_stats(client: Client, auth: dict[str, str], integration_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/integrations/{integration_id}", headers=auth)
    assert response.status_code == 200, response.text
    stats: dict[str, Any] = response.json()["integration"]["sync_stats"]
    return stats


def as_api(expected: dict[str, Any]) -> dict[str, Any]:
    when = expected["earliest_event_at"]
    return {**expected, "earliest_event_at": when.isoformat().replace("+00:00", "Z") if when else None}


def receive(runtime: Runtime, tenant_id: str, source_id: str, count: int, when: datetime) -> list[str]:
    """``count`` inbound records on ``source_id`` at ``when``, through the inbound path; the outbound ids."""
    items = [EventIn(type="order.created", data={"n": i}) for i in range(count)]
    with runtime.engine.begin() as conn:
        return write_inbound(runtime, conn, tenant_id, source_id, items, when)


def test_publish_inbound_and_retry_keep_the_counters_true(runtime: Runtime, client: Client) -> None:
    acme = make_tenant(runtime, "acme")
    auth = {"Authorization": acme["Authorization"]}
    destination = create_custom(client, auth, SINK)["id"]
    source = create_custom(client, auth, SINK, event_types=())["id"]
    assert api_stats(client, auth, destination) == {
        "events_last_24h": 0,
        "events_total": 0,
        "earliest_event_at": None,
    }

    single = client.post("/v1/events", json={"type": "order.created", "data": {}}, headers=auth)
    assert single.status_code == 202, single.text
    batch = {"events": [{"type": "order.created", "data": {"n": i}} for i in range(5)]}
    assert client.post("/v1/events", json=batch, headers=auth).status_code == 202
    ignored = client.post("/v1/events", json={"type": "order.refunded", "data": {}}, headers=auth)
    assert ignored.status_code == 202  # nobody subscribes: no event, nothing counted
    receive(runtime, acme["id"], source, 3, datetime.now(UTC))  # 3 inbound on source, 3 outbound on destination

    first = _first_event(runtime, destination)
    assert client.post(f"/v1/integrations/events/{first}/cancel", headers=auth).status_code == 200
    retried = client.post(f"/v1/integrations/events/{first}/retry", headers=auth)
    assert retried.status_code == 201, retried.text

    now = datetime.now(UTC)
    for integration_id, expected_total in ((destination, 6 + 3 + 1), (source, 3)):
        expected = truth(runtime, acme["id"], integration_id, now)
        assert expected["events_total"] == expected_total
        assert figures(runtime, acme["id"], integration_id, now) == expected
        assert api_stats(client, auth, integration_id) == as_api(expected)


def _first_event(runtime: Runtime, integration_id: str) -> str:
    with runtime.engine.connect() as conn:
        found: str = conn.execute(
            sa.select(events.c.id).where(events.c.integration_id == integration_id).order_by(events.c.id).limit(1)
        ).scalar_one()
    return found


def test_events_older_than_a_day_count_in_the_total_only(runtime: Runtime, client: Client) -> None:
    acme = make_tenant(runtime, "acme")
    auth = {"Authorization": acme["Authorization"]}
    source = create_custom(client, auth, SINK, event_types=())["id"]
    now = datetime.now(UTC)
    receive(runtime, acme["id"], source, 4, now - timedelta(days=40))
    receive(runtime, acme["id"], source, 2, now - timedelta(hours=25))
    receive(runtime, acme["id"], source, 3, now - timedelta(hours=23, minutes=59))
    receive(runtime, acme["id"], source, 1, now - timedelta(minutes=1))

    stats = figures(runtime, acme["id"], source, now)
    assert stats == truth(runtime, acme["id"], source, now)
    assert (stats["events_last_24h"], stats["events_total"]) == (4, 10)
    assert stats["earliest_event_at"] == now - timedelta(days=40)  # exact, not the start of its hour
    assert api_stats(client, auth, source)["events_total"] == 10


@pytest.mark.parametrize("minute", [0, 7, 29, 30, 31, 52])
def test_the_window_edge_is_exact_inside_its_hour(runtime: Runtime, client: Client, minute: int) -> None:
    """Events placed on and around ``now - 24h``, for a window starting on the hour, early in it and late in it."""
    acme = make_tenant(runtime, "acme")
    auth = {"Authorization": acme["Authorization"]}
    source = create_custom(client, auth, SINK, event_types=())["id"]
    now = datetime(2026, 3, 10, 12, minute, 0, tzinfo=UTC)
    start = now - timedelta(hours=24)
    edge_hour = start.replace(minute=0)
    tiny = timedelta(microseconds=1)
    moments = [
        edge_hour - tiny,  # the hour before: out
        edge_hour,
        edge_hour + tiny,
        start - tiny,  # just out
        start,  # just in
        start + tiny,
        edge_hour + timedelta(minutes=59, seconds=59, microseconds=999_999),
        edge_hour + timedelta(hours=1),
        now - timedelta(hours=3),
        now,
    ]
    for i, moment in enumerate(moments):
        receive(runtime, acme["id"], source, 1 + i % 2, moment)

    for probe in (now, now + timedelta(minutes=13), now + timedelta(minutes=31), now - timedelta(seconds=1)):
        assert figures(runtime, acme["id"], source, probe) == truth(runtime, acme["id"], source, probe), probe
    expected = sum(1 + i % 2 for i, moment in enumerate(moments) if moment >= start)
    assert figures(runtime, acme["id"], source, now)["events_last_24h"] == expected


def test_tenants_see_only_their_own_figures(runtime: Runtime, client: Client) -> None:
    acme = make_tenant(runtime, "acme")
    other = make_tenant(runtime, "other")
    acme_auth = {"Authorization": acme["Authorization"]}
    other_auth = {"Authorization": other["Authorization"]}
    mine = create_custom(client, acme_auth, SINK)["id"]
    theirs = create_custom(client, other_auth, SINK)["id"]
    for auth, count in ((acme_auth, 2), (other_auth, 7)):
        body = {"events": [{"type": "order.created", "data": {}} for _ in range(count)]}
        assert client.post("/v1/events", json=body, headers=auth).status_code == 202

    assert api_stats(client, acme_auth, mine)["events_total"] == 2
    assert api_stats(client, other_auth, theirs)["events_total"] == 7
    assert client.get(f"/v1/integrations/{theirs}", headers=acme_auth).status_code == 404
    now = datetime.now(UTC)
    assert figures(runtime, acme["id"], theirs, now) == {  # another tenant's id reads as empty
        "events_last_24h": 0,
        "events_total": 0,
        "earliest_event_at": None,
    }
    with runtime.engine.connect() as conn:
        buckets = dict(
            conn.execute(
                sa.select(event_counts.c.integration_id, sa.func.sum(event_counts.c.count)).group_by(
                    event_counts.c.integration_id
                )
            ).all()
        )
    assert {k: int(v) for k, v in buckets.items()} == {mine: 2, theirs: 7}


def test_deleting_an_integration_drops_its_buckets(runtime: Runtime, client: Client) -> None:
    acme = make_tenant(runtime, "acme")
    auth = {"Authorization": acme["Authorization"]}
    source = create_custom(client, auth, SINK, event_types=())["id"]
    receive(runtime, acme["id"], source, 2, datetime.now(UTC))
    assert client.delete(f"/v1/integrations/{source}", headers=auth).status_code == 204
    with runtime.engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(event_counts)).scalar_one()
    assert left == 0


def _seed_for_planner(runtime: Runtime, client: Client) -> tuple[str, str]:
    """20,000 events over 60 days for eight integrations of two tenants, ANALYZEd: a plan on it means something."""
    owners = [make_tenant(runtime, "acme"), make_tenant(runtime, "other")]
    pairs = []
    for k in range(8):
        owner = owners[k % 2]
        auth = {"Authorization": owner["Authorization"]}
        pairs.append((owner["id"], create_custom(client, auth, SINK, event_types=())["id"]))
    start = datetime(2026, 1, 10, tzinfo=UTC)
    with runtime.engine.begin() as conn:
        write_inbound(runtime, conn, pairs[0][0], pairs[0][1], [EventIn(type="order.created")], start)
        payload = conn.execute(sa.select(events.c.payload_ref)).scalar_one()
        rows = []
        for i in range(20_000):
            tenant_id, integration_id = pairs[i % 8]
            when = start + timedelta(seconds=i * 259)
            rows.append(
                {
                    "id": f"evt_seed{i:08d}",
                    "tenant_id": tenant_id,
                    "integration_id": integration_id,
                    "event_type": "order.created",
                    "direction": "outbound" if i % 3 else "inbound",
                    "status": ("succeeded", "failed", "queued")[i % 3],
                    "payload_ref": payload,
                    "attempts": 1,
                    "created_at": when,
                    "updated_at": when,
                }
            )
        conn.execute(events.insert(), rows)
    with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE")
    return pairs[0]


@pytest.mark.parametrize("minute", [10, 50])
def test_the_query_reads_events_through_the_integration_time_index(
    runtime: Runtime, client: Client, minute: int
) -> None:
    """No scan of the events table: MIN and the edge count go down ix_events_filter_integration_time."""
    tenant_id, integration_id = _seed_for_planner(runtime, client)
    now = datetime(2026, 3, 1, 12, minute, tzinfo=UTC)
    statement = stats_query(tenant_id, integration_id, now)
    with runtime.engine.connect() as conn:
        compiled = str(statement.compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "postgresql":
            plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}"))
        else:
            plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
    event_lines = [line for line in plan.splitlines() if " events " in f"{line} " and "event_counts" not in line]
    assert len(event_lines) == 3, plan
    assert all("ix_events_filter_integration_time" in line for line in event_lines), plan


def test_events_without_buckets_still_give_the_exact_earliest(runtime: Runtime, client: Client) -> None:
    """Events written before the counters existed (no bucket): the unbounded MIN answers."""
    acme = make_tenant(runtime, "acme")
    source = create_custom(client, {"Authorization": acme["Authorization"]}, SINK, event_types=())["id"]
    first = datetime.now(UTC) - timedelta(days=3, minutes=17)
    receive(runtime, acme["id"], source, 2, first)
    with runtime.engine.begin() as conn:
        conn.execute(event_counts.delete().where(event_counts.c.integration_id == source))
    assert figures(runtime, acme["id"], source, datetime.now(UTC))["earliest_event_at"] == first
