"""Helpers for pipeline tests: wait for a condition, create a custom integration, read event states."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from litestar.testing import TestClient

from interlink.integrations import NewIntegration, create_integration
from interlink.runtime import Runtime
from interlink.store.integrations import Synchronization
from interlink.store.tables import events
from interlink.store.tenants import create_tenant


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(interval)


def statuses(runtime: Runtime, ids: list[str] | None = None) -> dict[str, str]:
    stmt = sa.select(events.c.id, events.c.status)
    if ids is not None:
        stmt = stmt.where(events.c.id.in_(ids))
    with runtime.engine.connect() as conn:
        return {row.id: row.status for row in conn.execute(stmt)}


def all_in(runtime: Runtime, ids: list[str], wanted: set[str]) -> bool:
    found = statuses(runtime, ids)
    return len(found) == len(ids) and set(found.values()) <= wanted


def create_custom(
    client: TestClient,  # type: ignore[type-arg]
    auth: dict[str, str],
    url: str,
    *,
    event_types: tuple[str, ...] = ("order.created",),
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "service": "custom",
        "name": "My endpoint",
        "settings": {"url": url, **extra.pop("settings", {})},
        "synchronizations": [{"eventType": t} for t in event_types],
        **extra,
    }
    response = client.post("/v1/integrations", json=body, headers=auth)
    assert response.status_code == 201, response.text
    integration: dict[str, Any] = response.json()["integration"]
    return integration


def new_tenant(runtime: Runtime, name: str = "acme") -> str:
    """A tenant made in the store directly; its id."""
    with runtime.engine.begin() as conn:
        tenant, _token = create_tenant(conn, name)
    return tenant.id


def custom_for(runtime: Runtime, tenant_id: str, *event_types: str) -> str:
    """A ``custom`` integration (made through the core, not the API) delivering ``event_types``; its id."""
    integration, _secret = create_integration(
        runtime,
        tenant_id,
        NewIntegration(
            service="custom",
            settings={"url": "http://127.0.0.1:9/hook"},
            synchronizations=[Synchronization(t, True) for t in event_types],
        ),
    )
    return integration.id


def publish(client: TestClient, auth: dict[str, str], body: dict[str, Any]) -> list[str]:  # type: ignore[type-arg]
    """Publish and return the delivery ids."""
    response = client.post("/v1/events", json=body, headers=auth)
    assert response.status_code == 202, response.text
    return [d for e in response.json()["events"] for d in e["delivery_ids"]]
