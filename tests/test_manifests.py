"""The built-in manifests and connector packages, and how manifest validation reports what is wrong."""

from __future__ import annotations

import copy
import importlib
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from interlink.connector import Connector, ConnectorContext, WebhookRequest
from interlink.manifest import Manifest, ManifestError, builtin_manifest_path, load_manifest
from interlink.registry import load_registry

CAPABILITIES: dict[str, set[str]] = {
    "stripe": {"check", "deliver", "sync", "handle_webhook"},
    "revenuecat": {"check", "sync", "handle_webhook"},
    "adapty": {"check", "deliver", "handle_webhook"},
    "appsflyer": {"check", "deliver", "sync", "handle_webhook"},
    "adjust": {"check", "deliver", "sync"},
    "app_store_connect": {"check", "sync", "handle_webhook"},
    "google_play": {"check", "sync", "handle_webhook"},
    "klaviyo": {"check", "deliver", "sync", "handle_webhook"},
    "warehouse": {"check", "deliver", "sync"},
    "custom": {"deliver", "handle_webhook"},
}
BUILTINS = sorted(CAPABILITIES)
VENDOR_TALKING = [s for s in BUILTINS if s != "custom"]
ANY_EVENT_DESTINATIONS = {"klaviyo", "custom", "warehouse"}

CLASS_NAMES = {
    "stripe": "StripeConnector",
    "revenuecat": "RevenueCatConnector",
    "adapty": "AdaptyConnector",
    "appsflyer": "AppsFlyerConnector",
    "adjust": "AdjustConnector",
    "app_store_connect": "AppStoreConnectConnector",
    "google_play": "GooglePlayConnector",
    "klaviyo": "KlaviyoConnector",
    "warehouse": "WarehouseConnector",
    "custom": "CustomConnector",
}

# Every setting that is a credential; each must be writeOnly (encrypted at rest, masked everywhere).
SECRETS = {
    "stripe": {"apiKey", "webhookSecret"},
    "revenuecat": {"apiKey", "webhookAuthorization"},
    "adapty": {"apiKey", "webhookAuthorization"},
    "appsflyer": {"apiKey", "devKey", "webhookAuthorization"},
    "adjust": {"apiKey", "s2sToken"},
    "app_store_connect": {"privateKey"},
    "google_play": {"serviceAccountJson"},
    "klaviyo": {"apiKey", "webhookSecret"},
    "warehouse": {"dsn", "serviceAccountJson"},
    "custom": {"authorizationHeader"},
}

SEED_KLAVIYO_SETTINGS = {"apiKey": "pk_xxx..."}
CAMEL_CASE = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def _manifest(service: str) -> Manifest:
    return load_manifest(builtin_manifest_path(service))


def _raw(service: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(builtin_manifest_path(service).read_text(encoding="utf-8"))
    return data


def _props(service: str) -> Mapping[str, Any]:
    props: Mapping[str, Any] = _manifest(service).settings_schema["properties"]
    return props


# -- The manifest files --


def test_the_builtin_manifests_are_exactly_the_ten_services() -> None:
    folder = builtin_manifest_path("stripe").parent
    found = sorted(p.stem for p in folder.glob("*.json") if p.name != "meta-schema.json")
    assert found == BUILTINS


@pytest.mark.parametrize("service", BUILTINS)
def test_builtin_manifest_validates_against_the_meta_schema(service: str) -> None:
    manifest = _manifest(service)
    assert manifest.service == service
    assert manifest.version == "1.0.0"
    assert manifest.name
    assert manifest.description
    assert manifest.categories
    schema = manifest.settings_schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("service", BUILTINS)
def test_builtin_manifest_declares_its_capabilities(service: str) -> None:
    assert _manifest(service).capabilities == CAPABILITIES[service]


@pytest.mark.parametrize("service", BUILTINS)
def test_sync_interval_is_set_exactly_when_the_connector_syncs(service: str) -> None:
    manifest = _manifest(service)
    if "sync" in manifest.capabilities:
        assert manifest.default_sync_interval is not None
        assert manifest.default_sync_interval >= 60
    else:
        assert manifest.default_sync_interval is None
        assert "default_sync_interval" in _raw(service), "say null explicitly when there is no sync"


@pytest.mark.parametrize("service", BUILTINS)
def test_settings_keys_are_camel_case(service: str) -> None:
    assert all(CAMEL_CASE.match(key) for key in _props(service)), sorted(_props(service))


@pytest.mark.parametrize("service", BUILTINS)
def test_every_secret_setting_is_write_only(service: str) -> None:
    assert _manifest(service).secret_keys == SECRETS[service]


@pytest.mark.parametrize("service", BUILTINS)
def test_api_key_is_required_wherever_it_exists(service: str) -> None:
    schema = _manifest(service).settings_schema
    if "apiKey" in schema["properties"]:
        assert "apiKey" in schema["required"]
        assert schema["properties"]["apiKey"]["writeOnly"] is True


@pytest.mark.parametrize("service", VENDOR_TALKING)
def test_vendor_talking_manifest_has_an_optional_base_url(service: str) -> None:
    schema = _manifest(service).settings_schema
    base_url = schema["properties"]["baseUrl"]
    assert base_url["type"] == "string"
    assert base_url["format"] == "uri"
    assert "baseUrl" not in schema["required"]
    assert "emulators" in base_url["description"]


def test_custom_integration_requires_its_endpoint_url() -> None:
    schema = _manifest("custom").settings_schema
    assert schema["properties"]["url"]["format"] == "uri"
    assert "url" in schema["required"]
    assert "baseUrl" not in schema["properties"]


@pytest.mark.parametrize(
    ("service", "key"),
    [
        ("stripe", "webhookSecret"),
        ("klaviyo", "webhookSecret"),
        ("revenuecat", "webhookAuthorization"),
        ("adapty", "webhookAuthorization"),
    ],
)
def test_webhook_verification_settings_follow_the_naming_rule(service: str, key: str) -> None:
    prop = _props(service)[key]
    assert prop["writeOnly"] is True
    assert key not in _manifest(service).settings_schema["required"]


@pytest.mark.parametrize("service", BUILTINS)
def test_property_defaults_satisfy_the_settings_schema(service: str) -> None:
    manifest = _manifest(service)
    defaults = {k: p["default"] for k, p in _props(service).items() if "default" in p}
    required = {k: "x" for k in manifest.settings_schema["required"]}
    errors = manifest.validate_settings({**required, **defaults})
    assert [e for e in errors if e.pointer.removeprefix("/settings/") in defaults] == []


@pytest.mark.parametrize("service", BUILTINS)
def test_any_event_destinations(service: str) -> None:
    manifest = _manifest(service)
    assert manifest.accepts_any_event is (service in ANY_EVENT_DESTINATIONS)
    outbound = {e.event_type for e in manifest.sync_events if e.direction == "outbound"}
    if manifest.accepts_any_event:
        assert {"order.created", "order.updated", "customer.created", "customer.updated"} <= outbound
        assert manifest.accepts_event("anything.at_all")
    if "deliver" in manifest.capabilities:
        assert outbound, "a destination names at least the events it suggests"
    else:
        assert not outbound


@pytest.mark.parametrize(
    ("service", "event_type"),
    [
        ("stripe", "invoice.paid"),
        ("stripe", "customer.subscription.deleted"),
        ("revenuecat", "INITIAL_PURCHASE"),
        ("revenuecat", "EXPIRATION"),
        ("adapty", "subscription_started"),
        ("app_store_connect", "SUBSCRIBED"),
        ("app_store_connect", "DID_RENEW"),
        ("google_play", "SUBSCRIPTION_PURCHASED"),
        ("appsflyer", "install"),
    ],
)
def test_sources_list_the_vendors_own_inbound_event_types(service: str, event_type: str) -> None:
    manifest = _manifest(service)
    inbound = {e.event_type for e in manifest.sync_events if e.direction == "inbound"}
    assert event_type in inbound
    assert manifest.accepts_event(event_type)


# -- Settings validation against the built-in schemas --


def test_the_seed_klaviyo_settings_validate() -> None:
    assert _manifest("klaviyo").validate_settings(SEED_KLAVIYO_SETTINGS) == []


def test_klaviyo_requires_only_the_api_key() -> None:
    manifest = _manifest("klaviyo")
    assert manifest.settings_schema["required"] == ["apiKey"]
    assert _props("klaviyo")["revision"]["default"] == "2026-07-15"
    [error] = manifest.validate_settings({})
    assert (error.pointer, error.rule) == ("/settings/apiKey", "required")


def test_settings_errors_point_at_the_field_and_never_quote_a_secret() -> None:
    errors = _manifest("stripe").validate_settings(
        {"apiKey": 12345678, "baseUrl": "not a url", "apiSecret": "sk_live_leak"}
    )
    assert {(e.pointer, e.rule) for e in errors} == {
        ("/settings/apiKey", "type"),
        ("/settings/baseUrl", "format"),
        ("/settings/apiSecret", "additionalProperties"),
    }
    assert all("12345678" not in e.message and "sk_live_leak" not in e.message for e in errors)


def test_warehouse_kind_is_one_of_the_supported_warehouses() -> None:
    manifest = _manifest("warehouse")
    assert _props("warehouse")["kind"]["enum"] == ["postgresql", "bigquery"]
    [error] = manifest.validate_settings({"kind": "mysql", "dsn": "mysql://x"})
    assert (error.pointer, error.rule) == ("/settings/kind", "enum")


# -- The connector packages, through the real entry points --


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("INTERLINK_PLUGINS_ALLOW", raising=False)
    monkeypatch.delenv("INTERLINK_PLUGINS_BLOCK", raising=False)
    return load_registry()


def test_registry_loads_the_ten_builtins_through_entry_points(registry: Any) -> None:
    assert registry.broken == []
    builtins = {s: r for s, r in registry.connectors.items() if r.distribution == "interlink"}
    assert sorted(builtins) == BUILTINS, "run `pip install -e .` so the entry points exist"
    for service, registered in builtins.items():
        assert registered.entry_point == service
        assert registered.distribution == "interlink"
        assert registered.connector_class.__name__ == CLASS_NAMES[service]
        assert registered.connector_class.manifest is registered.manifest


@pytest.mark.parametrize("service", BUILTINS)
def test_connector_class_implements_exactly_its_declared_capabilities(service: str) -> None:
    module = importlib.import_module(f"interlink.plugins.{service}")
    cls = getattr(module, CLASS_NAMES[service])
    assert issubclass(cls, Connector)
    assert cls.implemented_capabilities() == _manifest(service).capabilities


IMPLEMENTED = {
    "custom": {"deliver", "handle_webhook"},
    "stripe": {"check", "deliver", "sync", "handle_webhook"},
    "klaviyo": {"check", "deliver", "sync", "handle_webhook"},
    "revenuecat": {"check", "sync", "handle_webhook"},
    "adapty": {"check", "deliver", "handle_webhook"},
    "appsflyer": {"check", "deliver", "sync", "handle_webhook"},
    "adjust": {"check", "deliver", "sync"},
    "app_store_connect": {"check", "sync", "handle_webhook"},
    "google_play": {"check", "sync", "handle_webhook"},
    "warehouse": {"check", "deliver", "sync"},
}
"""Capabilities that are no longer stubs (each has its own tests)."""


@pytest.mark.parametrize("service", BUILTINS)
def test_connector_stubs_say_they_arrive_with_the_connectors_issue(service: str) -> None:
    module = importlib.import_module(f"interlink.plugins.{service}")
    connector = getattr(module, CLASS_NAMES[service])()
    with httpx.Client() as http:
        ctx = ConnectorContext(integration_id="int_test", settings={}, http=http, logger=logging.getLogger("test"))
        calls = {
            "check": lambda: connector.check(ctx),
            "deliver": lambda: connector.deliver(ctx, {"id": "evt_1", "type": "order.created"}, "evt_1"),
            "sync": lambda: next(iter(connector.sync(ctx))),
            "handle_webhook": lambda: connector.handle_webhook(
                ctx, WebhookRequest(method="POST", path="/", headers={}, body=b"{}")
            ),
        }
        for capability in sorted(CAPABILITIES[service] - IMPLEMENTED.get(service, set())):
            expected = f"^{service} {capability} arrives with the (connectors|inbound webhooks) issue$"
            with pytest.raises(NotImplementedError, match=expected):
                calls[capability]()


# -- Manifest validation failures --


def _valid() -> dict[str, Any]:
    return copy.deepcopy(_raw("custom"))


def _errors(data: Mapping[str, Any] | Path) -> list[tuple[str, str]]:
    with pytest.raises(ManifestError) as caught:
        load_manifest(data)
    assert caught.value.errors
    return [(e.pointer, e.rule) for e in caught.value.errors]


def test_a_manifest_without_service_is_rejected_with_a_pointer() -> None:
    data = _valid()
    del data["service"]
    assert _errors(data) == [("/service", "required")]


def test_a_settings_schema_with_a_nested_object_is_rejected() -> None:
    data = _valid()
    data["settings"]["properties"]["headers"] = {
        "type": "object",
        "properties": {"X-Api-Key": {"type": "string"}},
    }
    errors = _errors(data)
    assert ("/settings/properties/headers/type", "enum") in errors
    assert ("/settings/properties/headers/properties", "additionalProperties") in errors


def test_a_required_setting_missing_from_properties_is_rejected() -> None:
    data = _valid()
    data["settings"]["required"] = ["url", "token"]
    assert _errors(data) == [("/settings/required/1", "required")]


def test_a_default_that_breaks_its_own_schema_is_rejected() -> None:
    data = _valid()
    data["settings"]["properties"]["timeout"] = {"type": "integer", "minimum": 1, "default": 0}
    assert _errors(data) == [("/settings/properties/timeout/default", "default")]


def test_every_problem_is_reported_at_once() -> None:
    data = _valid()
    data["service"] = "Not An Id"
    data["capabilities"] = ["deliver", "teleport"]
    data["default_sync_interval"] = 5
    assert sorted(_errors(data)) == [
        ("/capabilities/1", "enum"),
        ("/default_sync_interval", "minimum"),
        ("/service", "pattern"),
    ]


def test_an_unreadable_manifest_file_is_a_manifest_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    assert _errors(path) == [("", "json")]
