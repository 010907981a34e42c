"""``POST /v1/integrations/{id}/check`` on SQLite and PostgreSQL, against a real vendor API over HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from litestar.testing import TestClient

from interlink.api import create_app
from interlink.checks import CheckOutcome, check_integration_async
from interlink.config import Config
from interlink.connector import CheckResult, Connector, ConnectorContext, PermanentError
from interlink.http import raise_for_status
from interlink.manifest import Manifest
from interlink.registry import ConnectorRegistry, RegisteredConnector, load_registry
from interlink.runtime import Runtime
from interlink.secrets import MASK
from tests.conftest import make_tenant
from tests.vendor_records import API_KEY, Vendor, running_vendor

Client = TestClient  # type: ignore[type-arg]
SERVICE = "checkable_test"
MANIFEST: dict[str, Any] = {
    "service": SERVICE,
    "name": "Checkable (test)",
    "version": "0.0.1",
    "description": "A connector whose check calls GET /records with its API key.",
    "categories": ["testing"],
    "capabilities": ["check", "deliver"],
    "settings": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "baseUrl": {"type": "string", "format": "uri"},
            "apiKey": {"type": "string", "writeOnly": True, "minLength": 8},
            "mode": {"enum": ["normal", "leak", "crash", "bogus", "not_ok"]},
        },
        "required": ["baseUrl", "apiKey"],
        "additionalProperties": False,
    },
    "sync_events": [{"event_type": "order.created", "direction": "outbound", "description": "Sent to the vendor."}],
    "default_sync_interval": None,
}


class CheckableConnector(Connector):
    """``check`` makes one authenticated call; ``mode`` makes it misbehave in one chosen way."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        mode = ctx.settings.get("mode", "normal")
        if mode == "crash":
            raise RuntimeError(f"boom with {ctx.settings['apiKey']}")
        if mode == "bogus":
            return "fine"  # type: ignore[return-value]
        if mode == "not_ok":
            return CheckResult(ok=False, message="the account is suspended")
        response = ctx.http.get(
            f"{ctx.settings['baseUrl']}/records", headers={"Authorization": f"Bearer {ctx.settings['apiKey']}"}
        )
        if response.status_code == 401:
            detail = f"the vendor refused key {ctx.settings['apiKey']}" if mode == "leak" else "Invalid API key"
            raise PermanentError(detail, setting="apiKey")
        raise_for_status(response, setting="apiKey")
        return CheckResult(ok=True, message="Connected: the vendor accepted the API key")

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        raise PermanentError("not used in these tests")


@pytest.fixture
def checks_runtime(config: Config) -> Iterator[Runtime]:
    registry: ConnectorRegistry = load_registry()
    manifest = Manifest.from_dict(MANIFEST)
    CheckableConnector.manifest = manifest
    registry.connectors[SERVICE] = RegisteredConnector(manifest, CheckableConnector, "tests", "tests", "0.0.1")
    runtime = Runtime.start(config, registry=registry)
    yield runtime
    runtime.close()


@pytest.fixture
def api(checks_runtime: Runtime) -> Iterator[Client]:
    with TestClient(create_app(checks_runtime)) as c:
        yield c


@pytest.fixture
def acme(checks_runtime: Runtime) -> dict[str, str]:
    return {"Authorization": make_tenant(checks_runtime, "acme")["Authorization"]}


@pytest.fixture
def vendor() -> Iterator[Vendor]:
    with running_vendor() as v:
        yield v


def create(api: Client, auth: dict[str, str], base_url: str, api_key: str = API_KEY, mode: str = "normal") -> str:
    body = {"service": SERVICE, "settings": {"baseUrl": base_url, "apiKey": api_key, "mode": mode}}
    response = api.post("/v1/integrations", json=body, headers=auth)
    assert response.status_code == 201, response.text
    integration_id: str = response.json()["integration"]["id"]
    return integration_id


def check(api: Client, auth: dict[str, str], integration_id: str) -> dict[str, Any]:
    response = api.post(f"/v1/integrations/{integration_id}/check", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"ok", "message"}
    return body


def dead_port() -> int:
    """A port nothing listens on (bound then closed): a connection to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_working_key_is_ok_with_the_connectors_message(api: Client, acme: dict[str, str], vendor: Vendor) -> None:
    integration_id = create(api, acme, vendor.url)
    assert check(api, acme, integration_id) == {"ok": True, "message": "Connected: the vendor accepted the API key"}
    assert vendor.afters == [None]  # one real call reached the vendor


def test_bad_credentials_are_not_ok_and_name_the_setting(api: Client, acme: dict[str, str], vendor: Vendor) -> None:
    integration_id = create(api, acme, vendor.url, api_key="wrong-key-123")
    assert check(api, acme, integration_id) == {"ok": False, "message": "Invalid API key (setting 'apiKey')"}
    status = api.get(f"/v1/integrations/{integration_id}", headers=acme).json()["integration"]["status"]
    assert status == "connected"  # a check changes nothing


def test_secrets_are_masked_in_the_message(api: Client, acme: dict[str, str], vendor: Vendor) -> None:
    leaky = create(api, acme, vendor.url, api_key="wrong-key-123", mode="leak")
    body = check(api, acme, leaky)
    assert body["ok"] is False
    assert "wrong-key-123" not in body["message"]
    assert body["message"] == f"the vendor refused key {MASK} (setting 'apiKey')"
    crashing = create(api, acme, vendor.url, api_key="secret-key-456", mode="crash")
    body = check(api, acme, crashing)
    assert body == {"ok": False, "message": f"unexpected error in the connector: RuntimeError: boom with {MASK}"}


def test_a_vendor_that_is_down_is_not_ok_at_once(api: Client, acme: dict[str, str]) -> None:
    integration_id = create(api, acme, f"http://127.0.0.1:{dead_port()}")
    body = check(api, acme, integration_id)
    assert body == {"ok": False, "message": "connection to 127.0.0.1 failed: ConnectError"}


def test_a_faulty_connector_is_an_answer_not_a_500(api: Client, acme: dict[str, str], vendor: Vendor) -> None:
    bogus = create(api, acme, vendor.url, mode="bogus")
    assert check(api, acme, bogus) == {"ok": False, "message": f"the {SERVICE} connector is faulty: check returned str"}
    not_ok = create(api, acme, vendor.url, mode="not_ok")
    assert check(api, acme, not_ok) == {"ok": False, "message": "the account is suspended"}


def test_another_tenants_integration_is_not_found(
    api: Client, acme: dict[str, str], checks_runtime: Runtime, vendor: Vendor
) -> None:
    integration_id = create(api, acme, vendor.url)
    other = {"Authorization": make_tenant(checks_runtime, "other")["Authorization"]}
    for auth, target in ((other, integration_id), (acme, "int_doesnotexist")):
        response = api.post(f"/v1/integrations/{target}/check", headers=auth)
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    assert vendor.afters == []  # nothing reached the vendor


def test_a_connector_without_check_is_a_conflict(api: Client, acme: dict[str, str]) -> None:
    body = {"service": "custom", "settings": {"url": "http://127.0.0.1:9/hook"}}
    created = api.post("/v1/integrations", json=body, headers=acme)
    assert created.status_code == 201, created.text
    response = api.post(f"/v1/integrations/{created.json()['integration']['id']}/check", headers=acme)
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "the custom connector has no check"


def test_the_catalogue_lists_check_as_a_capability(api: Client, acme: dict[str, str]) -> None:
    listed = {
        item["service"]: item["capabilities"]
        for item in api.get("/v1/integrations/available", headers=acme).json()["available"]
    }
    assert "check" in listed[SERVICE]
    assert "check" not in listed["custom"]


def test_the_check_needs_a_token(api: Client, acme: dict[str, str], vendor: Vendor) -> None:
    integration_id = create(api, acme, vendor.url)
    assert api.post(f"/v1/integrations/{integration_id}/check").status_code == 401


def test_a_vendor_that_never_answers_is_not_ok_after_the_deadline(api: Client, checks_runtime: Runtime) -> None:
    tenant = make_tenant(checks_runtime, "acme")
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        integration_id = create(api, {"Authorization": tenant["Authorization"]}, url)
        outcome = asyncio.run(check_integration_async(checks_runtime, tenant["id"], integration_id, timeout=0.5))
    assert outcome == CheckOutcome(False, "the check did not finish within 0.5 s: the vendor may be down or slow")
