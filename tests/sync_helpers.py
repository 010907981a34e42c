"""Helpers for sync tests: the ``acme_test`` connector installed from tests/packages, runs and records."""

from __future__ import annotations

import importlib
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from interlink.registry import ConnectorRegistry, load_registry
from interlink.runtime import Runtime
from interlink.store.tables import published_events
from tests.vendor_records import API_KEY

Client = TestClient  # type: ignore[type-arg]


def acme_registry(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectorRegistry]:
    """The registry with the test package's ``acme_test`` connector (which syncs) loaded from ``site``."""
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield load_registry()
    for name in [m for m in sys.modules if m.startswith("interlink_test_good")]:
        del sys.modules[name]


def create_acme(client: Client, auth: dict[str, str], base_url: str, *, api_key: str = API_KEY) -> dict[str, Any]:
    body = {"service": "acme_test", "name": "Acme", "settings": {"apiKey": api_key, "baseUrl": base_url}}
    response = client.post("/v1/integrations", json=body, headers=auth)
    assert response.status_code == 201, response.text
    integration: dict[str, Any] = response.json()["integration"]
    return integration


def trigger(client: Client, auth: dict[str, str], integration_id: str) -> str:
    response = client.post(f"/v1/integrations/{integration_id}/sync", headers=auth)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "ok"
    sync_id: str = body["sync_id"]
    return sync_id


def run(client: Client, auth: dict[str, str], integration_id: str, sync_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/integrations/{integration_id}/syncs/{sync_id}", headers=auth)
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()["sync"]
    return detail


def finished(client: Client, auth: dict[str, str], integration_id: str, sync_id: str) -> dict[str, Any] | None:
    """The run once it has ended (succeeded, failed or cancelled), else ``None``: a ``wait_for`` condition."""
    detail = run(client, auth, integration_id, sync_id)
    return detail if detail["status"] in ("succeeded", "failed", "cancelled") else None


def integration(client: Client, auth: dict[str, str], integration_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/integrations/{integration_id}", headers=auth)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["integration"]
    return found


def published_per_record(runtime: Runtime, integration_id: str) -> Counter[str]:
    """How many times each vendor record was published by the integration's syncs."""
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            sa.select(published_events.c.data).where(published_events.c.source_integration_id == integration_id)
        ).scalars()
        return Counter(json.loads(data)["id"] for data in rows)
