"""``interlink connectors new``: the generated package installs, registers from its own distribution,
passes the whole conformance suite as generated, and is listed in the catalogue like a built-in."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from interlink import scaffold
from interlink.api import create_app
from interlink.cli import main
from interlink.config import Config
from interlink.manifest import load_manifest
from interlink.registry import ConnectorRegistry, load_registry
from interlink.runtime import Runtime
from interlink.testing.emulators import emulator_class, emulator_services
from tests.conftest import make_tenant
from tests.plugin_packages import pip_install

FILES = {
    "pyproject.toml",
    "README.md",
    "interlink_acme/__init__.py",
    "interlink_acme/manifest.json",
    "interlink_acme/emulator.py",
    "interlink_acme/py.typed",
    "tests/test_conformance.py",
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``interlink connectors new acme --directory <tmp>``."""
    parent = tmp_path_factory.mktemp("scaffold")
    result = CliRunner().invoke(main, ["connectors", "new", "acme", "--directory", str(parent)])
    assert result.exit_code == 0, result.output
    return parent / "interlink-acme"


@pytest.fixture(scope="module")
def site(generated: Path) -> Path:
    """The generated package installed by pip into a folder, as into site-packages."""
    return pip_install(generated.parent / "site", generated)


@pytest.fixture
def registry(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectorRegistry]:
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("INTERLINK_PLUGINS_ALLOW", raising=False)
    monkeypatch.delenv("INTERLINK_PLUGINS_BLOCK", raising=False)
    importlib.invalidate_caches()
    yield load_registry()
    for name in [m for m in sys.modules if m.startswith("interlink_acme")]:
        del sys.modules[name]


def test_the_package_is_generated_and_lint_clean(generated: Path) -> None:
    assert {str(p.relative_to(generated)) for p in generated.rglob("*") if p.is_file()} == FILES
    manifest = load_manifest(generated / "interlink_acme" / "manifest.json")
    assert manifest.service == "acme"
    assert manifest.secret_keys == {"apiKey"}
    assert manifest.settings_schema["properties"]["baseUrl"]["format"] == "uri"
    assert 'acme = "interlink_acme"' in (generated / "pyproject.toml").read_text(encoding="utf-8")
    for command in (["check"], ["format", "--check"]):
        linted = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--no-cache", str(generated)], capture_output=True, text=True
        )
        assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.parametrize("name", ["Acme", "a", "1acme", "acme-crm", "acme crm", "x" * 51])
def test_an_invalid_name_is_refused_with_the_rule(name: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["connectors", "new", name, "--directory", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a valid service id" in result.output
    assert "lowercase letters, digits and underscores" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_taken_service_id_or_an_existing_folder_is_refused(generated: Path, tmp_path: Path) -> None:
    taken = CliRunner().invoke(main, ["connectors", "new", "stripe", "--directory", str(tmp_path)])
    assert taken.exit_code == 2
    assert "already registered by interlink" in taken.output
    again = CliRunner().invoke(main, ["connectors", "new", "acme", "--directory", str(generated.parent)])
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_names_with_underscores_make_a_class_name() -> None:
    files = scaffold.render("acme_crm")
    assert "class AcmeCrmConnector(Connector):" in files["interlink_acme_crm/__init__.py"]
    assert 'acme_crm = "interlink_acme_crm"' in files["pyproject.toml"]
    assert "https://api.acme-crm.example" in files["interlink_acme_crm/manifest.json"]


def test_the_installed_package_registers_from_its_distribution(registry: ConnectorRegistry) -> None:
    acme = registry.get("acme")
    assert acme is not None, [b.as_dict() for b in registry.broken]
    assert acme.distribution == "interlink-acme"
    assert acme.distribution_version == "0.1.0"
    assert acme.entry_point == "acme"
    assert acme.connector_class.__name__ == "AcmeConnector"
    assert acme.manifest.capabilities == {"deliver"}
    # its emulator is found by `interlink emulate acme` and `interlink conformance acme`
    assert "acme" in emulator_services()
    assert emulator_class("acme").__name__ == "AcmeEmulator"


def test_the_generated_tests_pass_the_whole_suite(generated: Path, site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    env.pop("INTERLINK_PLUGINS_ALLOW", None)
    env.pop("INTERLINK_PLUGINS_BLOCK", None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(generated / "tests" / "test_conformance.py"),
        ],
        cwd=generated,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "12 passed" in run.stdout


def test_the_catalogue_lists_it_like_a_builtin(registry: ConnectorRegistry, config: Config) -> None:
    runtime = Runtime.start(config, registry=registry)
    try:
        auth = {"Authorization": make_tenant(runtime, "acme")["Authorization"]}
        with TestClient(create_app(runtime)) as client:
            available = {
                m["service"]: m for m in client.get("/v1/integrations/available", headers=auth).json()["available"]
            }
            assert available["acme"]["distribution"] == "interlink-acme"
            listed = dict(available["acme"])
            listed.pop("distribution")
            raw = registry.connectors["acme"].manifest.raw
            assert listed == {key: value for key, value in raw.items() if key in listed}
            created = client.post(
                "/v1/integrations", json={"service": "acme", "settings": {"apiKey": "k-123456"}}, headers=auth
            )
            assert created.status_code == 201, created.text
            assert created.json()["integration"]["settings"] == {"apiKey": "********"}
    finally:
        runtime.close()
