"""The real server process: first start, restart, and plugins that break without taking it down."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.plugin_packages import install_test_packages
from tests.server import running_server


def test_first_start_creates_default_tenant_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_server(data_dir) as server:
        token = server.token
        assert token is not None
        assert token.startswith("il_")
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{server.base_url}/v1/integrations/", headers=auth).json()["integrations"] == []
        created = httpx.post(
            f"{server.base_url}/v1/integrations/",
            json={"service": "klaviyo", "settings": {"apiKey": "pk_live_secret"}},
            headers=auth,
        )
        assert created.status_code == 201
    assert (data_dir / "interlink.db").exists()
    assert (data_dir / "secret.key").stat().st_mode & 0o777 == 0o600
    with running_server(data_dir) as server:
        assert server.token is None
        listed = httpx.get(f"{server.base_url}/v1/integrations", headers=auth).json()["integrations"]
        assert [i["service"] for i in listed] == ["klaviyo"]
    assert "pk_live_secret" not in (data_dir / "interlink.db").read_bytes().decode("latin-1")


def test_broken_plugins_do_not_stop_the_server(tmp_path: Path) -> None:
    site = install_test_packages(tmp_path / "site", "interlink-test-good", "interlink-test-broken")
    with running_server(tmp_path / "data", extra_env={"PYTHONPATH": str(site)}) as server:
        text = "\n".join(server.output)
        for entry_point in ("broken_import", "broken_class", "broken_manifest", "broken_duplicate"):
            assert f"plugin {entry_point} (interlink-test-broken) skipped" in text
        auth = {"Authorization": f"Bearer {server.token}"}
        available = httpx.get(f"{server.base_url}/v1/integrations/available", headers=auth).json()["available"]
        services = {m["service"]: m for m in available}
        assert services["acme_test"]["distribution"] == "interlink-test-good"
        assert services["stripe"]["distribution"] == "interlink"
        assert "lazy" not in services
