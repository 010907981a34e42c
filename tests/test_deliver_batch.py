"""A connector with a bulk path gets the waiting events of one integration in one ``deliver_batch`` call,
and each event keeps its own outcome (succeeded, retried, failed) and its communication log."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from litestar.testing import TestClient

from interlink.config import Config
from interlink.connector import Connector, ConnectorContext, PermanentError
from interlink.http import raise_for_status
from interlink.manifest import Manifest
from interlink.registry import RegisteredConnector, load_registry
from interlink.runtime import Runtime
from tests.pipeline_helpers import statuses, wait_for
from tests.sink import Sink, running_sink

Client = TestClient  # type: ignore[type-arg]

MANIFEST = {
    "service": "bulk_test",
    "name": "Bulk (test)",
    "version": "0.0.1",
    "description": "Posts waiting events in one request.",
    "categories": ["testing"],
    "capabilities": ["deliver"],
    "settings": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"url": {"type": "string", "format": "uri"}},
        "required": ["url"],
        "additionalProperties": False,
    },
    "sync_events": [{"event_type": "order.created", "direction": "outbound", "description": "Sent in bulk."}],
}


class BulkConnector(Connector):
    """One POST per batch; an event whose data says ``refuse`` is refused on its own."""

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        self.deliver_batch(ctx, [(event, idempotency_key)])

    def deliver_batch(
        self, ctx: ConnectorContext, batch: Sequence[tuple[Mapping[str, Any], str]]
    ) -> list[Exception | None]:
        body = [{"key": key, "data": event["data"]} for event, key in batch]
        raise_for_status(ctx.http.post(str(ctx.settings["url"]), json=body))
        return [PermanentError("refused by the vendor") if e["data"].get("refuse") else None for e, _ in batch]


@pytest.fixture
def live(config: Config) -> Iterator[Runtime]:
    registry = load_registry()
    manifest = Manifest.from_dict(MANIFEST)
    registry.connectors["bulk_test"] = RegisteredConnector(manifest, BulkConnector, "bulk_test", "tests", "0")
    fast = dataclasses.replace(config, redispatch_after=1.0, reaper_interval=0.2, lease_seconds=5.0)
    runtime = Runtime.start(fast, registry=registry)
    runtime.pipeline.start(threads=2)
    yield runtime
    runtime.close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as s:
        yield s


def test_waiting_events_go_in_one_call_and_keep_their_own_outcomes(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink
) -> None:
    body = {
        "service": "bulk_test",
        "name": "bulk",
        "settings": {"url": sink.url("/bulk")},
        "synchronizations": [{"eventType": "order.created"}],
    }
    created = api.post("/v1/integrations", json=body, headers=tenant)
    assert created.status_code == 201, created.text
    batch = [{"type": "order.created", "data": {"n": n, "refuse": n == 1}} for n in range(3)]
    accepted = api.post("/v1/events", json={"events": batch}, headers=tenant)
    assert accepted.status_code == 202, accepted.text
    wait_for(lambda: len(statuses(live)) == 3 and set(statuses(live).values()) <= {"succeeded", "failed"})

    requests = sink.at("/bulk")
    assert len(requests) == 1, "the three waiting events went in one call"
    assert [item["data"]["n"] for item in json.loads(requests[0].body)] == [0, 1, 2]
    found = statuses(live)
    integration_events = sorted(found.values())
    assert integration_events == ["failed", "succeeded", "succeeded"]
    for event_id in found:
        detail = api.get(f"/v1/integrations/events/{event_id}", headers=tenant).json()["event"]
        assert len(detail["communication_logs"]) == 1
        if detail["status"] == "failed":
            assert "refused by the vendor" in detail["error"]
