"""What the connector tests share: contexts aimed at an emulator, consuming a sync, a sync through the core."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from interlink import integrations
from interlink.connector import Connector, ConnectorContext
from interlink.http import recording_client
from interlink.pipeline.sync import run_sync
from interlink.runtime import Runtime
from interlink.syncs import get_sync, trigger_sync
from interlink.testing.emulators.base import Emulator
from tests.conftest import make_tenant


def make_context(
    emulator: Emulator,
    service: str,
    clients: list[httpx.Client],
    *,
    now: Callable[[], datetime],
    state: dict[str, Any] | None = None,
    timeout: float = 5.0,
    **settings: Any,
) -> ConnectorContext:
    """A context as the core builds one, with the emulator's settings; ``None`` in ``settings`` drops a key."""
    values = {**emulator.integration_settings(), **settings}
    values = {k: v for k, v in values.items() if v is not None}
    client = recording_client(secrets=[emulator.api_key, emulator.webhook_secret], timeout=httpx.Timeout(timeout))
    clients.append(client)
    return ConnectorContext(
        integration_id="int_test",
        settings=values,
        http=client,
        logger=logging.getLogger(f"interlink.connector.{service}"),
        state=json.loads(json.dumps(state or {})),
        now=now,
    )


def consume(
    connector: Connector, ctx: ConnectorContext, stop_after: int | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run a sync: its records and its checkpoints' states (JSON round-tripped), stopping after ``stop_after``."""
    records: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    items = connector.sync(ctx)
    for item in items:
        if set(item) == {"checkpoint"}:
            states.append(json.loads(json.dumps(item["checkpoint"])))
            if len(states) == stop_after:
                items.close()  # type: ignore[attr-defined]  # a worker killed after this checkpoint
                break
        else:
            records.append(item)
    return records, states


@dataclass
class Run:
    """What one sync yielded: its records, and its checkpoints as ``(records before it, state)``."""

    records: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.records]


def sync_run(connector: Connector, ctx: ConnectorContext, *, stop_after: int | None = None) -> Run:
    """Run a sync to its end, or cut it after checkpoint number ``stop_after`` as a killed worker would be."""
    result = Run()
    for item in connector.sync(ctx):
        if set(item) == {"checkpoint"}:
            result.checkpoints.append((len(result.records), item["checkpoint"]))
            if stop_after is not None and len(result.checkpoints) == stop_after:
                break
        else:
            result.records.append(item)
    return result


def integration_at(
    runtime: Runtime, emulator: Emulator, service: str, tenant: str = "acme", **settings: Any
) -> tuple[str, str]:
    """A new tenant and its integration of ``service`` aimed at the emulator: their ids."""
    tenant_id = make_tenant(runtime, tenant)["id"]
    values = {"apiKey": emulator.api_key, "baseUrl": emulator.url, **settings}
    new = integrations.NewIntegration(service=service, settings=values)
    integration, _ = integrations.create_integration(runtime, tenant_id, new)
    return tenant_id, integration.id


def sync_now(runtime: Runtime, tenant_id: str, integration_id: str) -> dict[str, Any]:
    """Trigger a sync and run it in this thread through the core's sync path; the finished run."""
    run_id, _ = trigger_sync(runtime, tenant_id, integration_id)
    run_sync(runtime, run_id)
    return get_sync(runtime, tenant_id, integration_id, run_id)
