"""The ``interlink`` command, run through click on the real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from interlink.cli import main
from interlink.config import Config
from interlink.runtime import Runtime
from interlink.store import create_engine, is_up_to_date
from interlink.store.tenants import tenant_by_token
from interlink.testing.emulators import EMULATORS, emulator_class


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("INTERLINK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("INTERLINK_DATABASE_URL", database_url)
    monkeypatch.delenv("INTERLINK_SECRET_KEY", raising=False)
    return Config.from_env()


def test_db_upgrade_migrates(env: Config) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert is_up_to_date(create_engine(env.database_url))


def test_tenants_create_json_then_list(env: Config) -> None:
    runner = CliRunner()
    created = runner.invoke(main, ["tenants", "create", "acme", "--json"])
    assert created.exit_code == 0, created.output
    body = json.loads(created.output)
    assert set(body) == {"tenant_id", "token"}
    assert body["tenant_id"].startswith("tnt_")
    runtime = Runtime.start(env)
    try:
        with runtime.engine.connect() as conn:
            tenant = tenant_by_token(conn, body["token"])
        assert tenant is not None
        assert tenant.id == body["tenant_id"]
    finally:
        runtime.close()
    again = runner.invoke(main, ["tenants", "create", "acme"])
    assert again.exit_code != 0
    assert "exists already" in again.output
    listed = json.loads(runner.invoke(main, ["tenants", "list", "--json"]).output)
    assert [t["name"] for t in listed] == ["acme"]
    assert body["token"] not in runner.invoke(main, ["tenants", "list"]).output


def test_connectors_list_json() -> None:
    result = CliRunner().invoke(main, ["connectors", "list", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    services = {c["service"]: c for c in body["connectors"]}
    assert "klaviyo" in services
    assert services["klaviyo"]["distribution"] == "interlink"
    assert "deliver" in services["klaviyo"]["capabilities"]
    assert body["broken"] == []


@pytest.mark.parametrize("service", sorted(EMULATORS))
def test_every_emulator_starts_as_interlink_emulate_starts_it(service: str) -> None:
    """``interlink emulate SERVICE`` builds the emulator with these arguments; it must answer at its URL."""
    emulator = emulator_class(service)(api_key="emulate-key-0123456789", webhook_secret=None, host="127.0.0.1", port=0)
    with emulator:
        assert emulator.api_key == "emulate-key-0123456789"
        assert emulator.webhook_secret
        assert httpx.get(f"{emulator.url}/_emulator/requests", timeout=5).status_code == 200


def test_emulate_names_the_emulators_for_an_unknown_service() -> None:
    result = CliRunner().invoke(main, ["emulate", "nope"])
    assert result.exit_code == 2
    assert "no emulator for 'nope' (there are: adapty, adjust," in result.output
