"""Plugin discovery through real entry points of installed distributions."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from interlink.api import create_app
from interlink.config import Config
from interlink.registry import ConnectorRegistry, load_registry
from interlink.runtime import Runtime
from tests.conftest import make_tenant
from tests.plugin_packages import install_test_packages


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_test_packages(tmp_path_factory.mktemp("site"), "interlink-test-good", "interlink-test-broken")


@pytest.fixture
def registry(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectorRegistry]:
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield load_registry()
    for name in [m for m in sys.modules if m.startswith(("interlink_test_good", "interlink_test_broken"))]:
        del sys.modules[name]


def broken_by_entry_point(registry: ConnectorRegistry) -> dict[str, str]:
    return {b.entry_point: b.error for b in registry.broken}


def test_third_party_package_is_loaded_like_a_builtin(registry: ConnectorRegistry) -> None:
    acme = registry.get("acme_test")
    assert acme is not None
    assert acme.distribution == "interlink-test-good"
    assert acme.distribution_version == "0.3.0"
    assert acme.entry_point == "acme_test"
    assert registry.get("stripe") is not None
    assert registry.get("stripe").distribution == "interlink"  # type: ignore[union-attr]


def test_each_broken_plugin_is_reported_and_skipped(registry: ConnectorRegistry) -> None:
    broken = broken_by_entry_point(registry)
    assert "ModuleNotFoundError" in broken["broken_import"]
    assert "interlink_no_such_dependency" in broken["broken_import"]
    assert "must subclass interlink.connector.Connector" in broken["broken_class"]
    assert "invalid manifest" in broken["broken_manifest"]
    assert "/service" in broken["broken_manifest"]
    assert "deliver" in broken["broken_capability"]
    assert "does not implement" in broken["broken_capability"]
    assert "register_conectors" in broken["broken_hookname"]
    assert "decorated with @hookimpl" in broken["broken_unmarked"]
    for record in registry.broken:
        assert record.distribution == "interlink-test-broken"
        assert record.distribution_version == "0.0.1"
    assert {"not_a_connector", "lazy", "Bad Service!"}.isdisjoint(registry.connectors)


def test_duplicate_service_id_is_rejected_not_renamed(registry: ConnectorRegistry) -> None:
    error = broken_by_entry_point(registry)["broken_duplicate"]
    assert "'stripe' is already registered" in error
    assert registry.connectors["stripe"].distribution == "interlink"
    assert registry.connectors["stripe"].connector_class.__module__ == "interlink.plugins.stripe"


def test_allow_and_block_lists(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("INTERLINK_PLUGINS_ALLOW", "acme_test,stripe")
    assert set(load_registry().connectors) == {"acme_test", "stripe"}
    monkeypatch.delenv("INTERLINK_PLUGINS_ALLOW")
    monkeypatch.setenv("INTERLINK_PLUGINS_BLOCK", "acme_test,broken_import")
    registry = load_registry()
    assert "acme_test" not in registry.connectors
    assert "broken_import" not in broken_by_entry_point(registry)


def test_catalogue_shows_the_third_party_connector(registry: ConnectorRegistry, config: Config) -> None:
    runtime = Runtime.start(config, registry=registry)
    try:
        auth = {"Authorization": make_tenant(runtime, "acme")["Authorization"]}
        with TestClient(create_app(runtime)) as client:
            available = client.get("/v1/integrations/available", headers=auth).json()["available"]
            acme = next(m for m in available if m["service"] == "acme_test")
            assert acme["distribution"] == "interlink-test-good"
            created = client.post(
                "/v1/integrations", json={"service": "acme_test", "settings": {"apiKey": "k-123456"}}, headers=auth
            )
            assert created.status_code == 201, created.text
            assert created.json()["integration"]["settings"] == {"apiKey": "********"}
            refused = client.post("/v1/integrations", json={"service": "lazy"}, headers=auth)
            assert refused.status_code == 422
    finally:
        runtime.close()
