"""The documentation keeps up with the code: hooks, connector methods, CLI commands, settings.

As datasette's ``tests/test_docs.py`` does, the build fails when something a plugin author or a user
relies on is added without being documented in CONTRIBUTING.md or README.md.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import logging
import re
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import httpx
import pluggy
import pytest

from interlink import connector, hookspecs
from interlink.api import create_app
from interlink.cli import main
from interlink.connector import CAPABILITIES, Connector, ConnectorContext, PermanentError, TransientError
from interlink.http import RecordingClient, recording_client
from interlink.manifest import load_manifest, meta_schema
from interlink.registry import load_registry
from interlink.testing import CHECKS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
SOURCE_DIRS = [ROOT / "core", ROOT / "api"]
ENV_VAR = re.compile(r"\bINTERLINK_[A-Z][A-Z0-9_]*\b")

SEED_CREATE = {
    "service": "klaviyo",
    "enabled": True,
    "name": "Klaviyo Marketing",
    "settings": {"apiKey": "pk_xxx..."},
    "synchronizations": [
        {"eventType": "order.created", "enabled": True},
        {"eventType": "order.updated", "enabled": True},
    ],
}


def _hook_names() -> list[str]:
    """The hookspecs pluggy finds in ``interlink.hookspecs``."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    names = sorted(
        name
        for name in dir(hookspecs)
        if inspect.isfunction(getattr(hookspecs, name))
        and hasattr(getattr(hookspecs, name), f"{hookspecs.PROJECT_NAME}_spec")
    )
    assert names == sorted(n for n in vars(pm.hook) if not n.startswith("_"))
    return names


def _has_section(document: str, name: str) -> bool:
    return re.search(rf"^###\s+`?{re.escape(name)}`?\s*$", document, flags=re.MULTILINE) is not None


def _commands(group: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from _commands(command, path)


def _code_blocks(document: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", document, flags=re.MULTILINE | re.DOTALL)


# -- Hooks and connector methods: CONTRIBUTING.md is the author's manual --

HOOKS = _hook_names()


def test_there_are_hooks_to_document() -> None:
    assert "register_connectors" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docstring(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook))
    assert doc, f"hook {hook} in core/hookspecs.py has no docstring: it is the plugin author's manual"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_in_contributing(hook: str) -> None:
    assert _has_section(CONTRIBUTING, hook), f"CONTRIBUTING.md has no '### {hook}' section"


CONNECTOR_METHODS = sorted(
    name for name, value in vars(Connector).items() if callable(value) and not name.startswith("_")
)


def test_the_connector_methods_are_found() -> None:
    assert {*CAPABILITIES, "deliver_batch", "verify_webhook"} <= set(CONNECTOR_METHODS)


@pytest.mark.parametrize("method", CONNECTOR_METHODS)
def test_every_connector_method_is_in_contributing(method: str) -> None:
    assert f"`{method}(self" in CONTRIBUTING or f"`{method}()`" in CONTRIBUTING, (
        f"Connector.{method} is not described in CONTRIBUTING.md"
    )


@pytest.mark.parametrize("method", CONNECTOR_METHODS)
def test_every_connector_method_has_a_docstring(method: str) -> None:
    assert inspect.getdoc(getattr(Connector, method)), f"Connector.{method} has no docstring"


@pytest.mark.parametrize("method", CAPABILITIES)
def test_every_connector_method_has_a_section_in_contributing(method: str) -> None:
    assert _has_section(CONTRIBUTING, method), f"CONTRIBUTING.md has no '### {method}' section"


@pytest.mark.parametrize("name", connector.__all__)
def test_every_name_of_the_connector_contract_is_in_contributing(name: str) -> None:
    assert f"`{name}" in CONTRIBUTING, f"interlink.connector.{name} is not mentioned in CONTRIBUTING.md"


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(ConnectorContext)])
def test_every_context_field_is_in_contributing(field: str) -> None:
    assert f"`ctx.{field}`" in CONTRIBUTING, f"ConnectorContext.{field} is not described in CONTRIBUTING.md"


@pytest.mark.parametrize("name", ["raise_for_status", "parse_retry_after", "transient_from_transport_error"])
def test_the_http_helpers_for_connectors_are_in_contributing(name: str) -> None:
    assert f"`{name}(" in CONTRIBUTING, f"interlink.http.{name} is not described in CONTRIBUTING.md"


def _section(document: str, heading: str) -> str:
    """The text under ``## heading``, up to the next ``## `` heading."""
    found = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", document, flags=re.MULTILINE | re.DOTALL)
    assert found, f"CONTRIBUTING.md has no '## {heading}' section"
    return found.group(1)


CONFORMANCE = _section(CONTRIBUTING, "The conformance suite")


def test_the_conformance_suite_has_checks() -> None:
    assert "test_deliver_5xx_is_transient" in CHECKS


@pytest.mark.parametrize("check", CHECKS)
def test_every_conformance_check_is_documented(check: str) -> None:
    assert re.search(rf"^- `{re.escape(check)}`: \S", CONFORMANCE, flags=re.MULTILINE), (
        f"CONTRIBUTING.md's 'The conformance suite' has no '- `{check}`: ...' item saying what the check means "
        "and how to fix a failure"
    )


def test_every_settings_keyword_of_the_meta_schema_is_listed() -> None:
    defs = meta_schema()["$defs"]
    keywords = set(defs["settingsSchema"]["properties"]) | set(defs["property"]["properties"])
    keywords |= set(defs["property"]["properties"]["items"]["properties"])
    formats = defs["property"]["properties"]["format"]["enum"]
    types = defs["property"]["properties"]["type"]["enum"]
    missing = sorted(k for k in keywords | set(formats) | set(types) if f"`{k}`" not in CONTRIBUTING)
    assert missing == [], f"CONTRIBUTING.md does not list these settings keywords or values: {missing}"


def test_every_top_level_manifest_field_is_listed() -> None:
    fields = sorted(meta_schema()["properties"])
    assert [f for f in fields if f"| `{f}` |" not in CONTRIBUTING] == []


# -- The example connector in CONTRIBUTING.md works as written --


@pytest.fixture
def acme_package(tmp_path: Path) -> Iterator[ModuleType]:
    """The example package of CONTRIBUTING.md, written to disk and imported."""
    [manifest] = [b for b in _code_blocks(CONTRIBUTING, "json") if '"service": "acme"' in b]
    [module_source] = [b for b in _code_blocks(CONTRIBUTING, "python") if "class AcmeConnector" in b]
    package = tmp_path / "acme_interlink"
    package.mkdir()
    (package / "manifest.json").write_text(manifest, encoding="utf-8")
    (package / "__init__.py").write_text(module_source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("acme_interlink", package / "__init__.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["acme_interlink"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["acme_interlink"]


def test_the_example_manifest_is_valid(acme_package: ModuleType) -> None:
    manifest = load_manifest(Path(acme_package.__file__ or "").with_name("manifest.json"))
    assert manifest.service == "acme"
    assert manifest.secret_keys == {"apiKey"}
    assert manifest.validate_settings({"apiKey": "k"}) == []


def test_the_example_connector_registers_through_its_entry_point(
    acme_package: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INTERLINK_PLUGINS_ALLOW", raising=False)
    monkeypatch.delenv("INTERLINK_PLUGINS_BLOCK", raising=False)
    entry_point = metadata.EntryPoint(name="acme", value="acme_interlink", group="interlink")
    registry = load_registry([entry_point])
    assert registry.broken == []
    assert registry.connectors["acme"].connector_class is acme_package.AcmeConnector


def _acme_context(handler: Any) -> ConnectorContext:
    """A context as the core builds it: the recording client, here on a mock transport."""
    http = recording_client(secrets=["k-1"], transport=httpx.MockTransport(handler))
    return ConnectorContext(
        integration_id="int_test", settings={"apiKey": "k-1"}, http=http, logger=logging.getLogger("acme")
    )


def test_the_example_connector_classifies_failures(acme_package: ModuleType) -> None:
    acme = acme_package.AcmeConnector()
    event = {"id": "evt_1", "type": "order.created", "occurred_at": "2025-01-01T00:00:00Z", "data": {}}
    seen: list[httpx.Request] = []

    def ok(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"account": "acct_1"})

    assert acme.check(_acme_context(ok)).ok
    acme.deliver(_acme_context(ok), event, "evt_1")
    assert seen[0].headers["Authorization"] == "Bearer k-1"
    assert str(seen[1].url) == "https://api.acme.example/v1/events"
    assert seen[1].headers["Idempotency-Key"] == "evt_1"
    with pytest.raises(PermanentError) as refused:
        acme.check(_acme_context(lambda _: httpx.Response(401)))
    assert refused.value.setting == "apiKey"
    with pytest.raises(TransientError) as busy:
        acme.deliver(_acme_context(lambda _: httpx.Response(429, headers={"Retry-After": "7"})), event, "evt_1")
    assert busy.value.delay == 7.0
    with pytest.raises(PermanentError):
        acme.deliver(_acme_context(lambda _: httpx.Response(422, json={"error": "bad event"})), event, "evt_1")

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    down = _acme_context(refused)
    with pytest.raises(TransientError):
        acme.deliver(down, event, "evt_1")
    assert isinstance(down.http, RecordingClient)
    [exchange] = down.http.exchanges  # the failed attempt is in the communication log, its key masked
    assert exchange.error is not None
    assert "k-1" not in json.dumps(exchange.as_dict())


# -- README.md: every command and every environment variable --

COMMANDS = [("interlink", main), *_commands(main, "interlink")]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_every_cli_command_and_option_is_in_the_readme(path: str, command: click.Command) -> None:
    assert path in README, f"README.md does not mention `{path}`"
    options = [
        opt for param in command.params if isinstance(param, click.Option) for opt in param.opts if opt.startswith("--")
    ]
    missing = [opt for opt in options if opt not in README]
    assert missing == [], f"README.md does not mention these options of `{path}`: {missing}"


def test_the_cli_has_commands() -> None:
    assert {"interlink serve", "interlink tenants create", "interlink connectors list"} <= {p for p, _ in COMMANDS}


def _env_vars_read_by_the_code() -> list[str]:
    names: set[str] = set()
    for folder in SOURCE_DIRS:
        for path in folder.rglob("*.py"):
            names |= set(ENV_VAR.findall(path.read_text(encoding="utf-8")))
    return sorted(names)


ENV_VARS = _env_vars_read_by_the_code()


def test_the_configuration_is_found() -> None:
    assert {"INTERLINK_DATA_DIR", "INTERLINK_DATABASE_URL", "INTERLINK_SECRET_KEY"} <= set(ENV_VARS)


@pytest.mark.parametrize("name", ENV_VARS)
def test_every_environment_variable_is_in_the_readme(name: str) -> None:
    assert f"`{name}`" in README, f"README.md does not document {name}"


def _routes() -> list[str]:
    """``METHOD /path`` of every operation in the OpenAPI document, path parameters as ``{}``."""
    paths = create_app().openapi_schema.paths or {}
    methods = ("get", "put", "post", "delete", "patch")
    return sorted(
        f"{method.upper()} {_normalized(path)}"
        for path, item in paths.items()
        for method in methods
        if getattr(item, method)
    )


def _normalized(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.split("?", 1)[0]).rstrip("/") or "/"


ROUTES = _routes()


def test_the_api_has_event_routes() -> None:
    assert {"POST /v1/events", "POST /v1/integrations/events/filter"} <= set(ROUTES)


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_is_in_the_readme(route: str) -> None:
    documented = {
        f"{method} {_normalized(path)}"
        for method, path in re.findall(r"^\| `([A-Z]+) (/\S*)` \|", README, re.MULTILINE)
    }
    assert route in documented, f"README.md's route table does not list {route}"


def test_the_readme_creates_the_seed_integration_verbatim() -> None:
    bodies = re.findall(r"-d '(\{.*?\})'", README, flags=re.DOTALL)
    assert SEED_CREATE in [json.loads(body) for body in bodies]
