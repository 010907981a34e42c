"""No request, however malformed, gets a 500: hypothesis at every write route, schemathesis at the spec."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import allow_header_conformance

from interlink.api import create_app
from interlink.config import Config
from interlink.runtime import Runtime
from tests.conftest import make_tenant

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["service", "type", "name", "enabled", "settings", "synchronizations", "sync_interval", "syncInterval"]
)
plausible_bodies = st.dictionaries(field_names, json_values, max_size=6) | st.fixed_dictionaries(
    {"service": st.sampled_from(["klaviyo", "custom", "stripe", "nope"])},
    optional={
        "settings": st.dictionaries(st.sampled_from(["apiKey", "url", "baseUrl", "x"]), json_values, max_size=3),
        "synchronizations": st.lists(
            st.dictionaries(st.sampled_from(["eventType", "event_type", "enabled", "x"]), json_values, max_size=3),
            max_size=3,
        ),
    },
)


@pytest.fixture(scope="module")
def fuzz_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    data = Path(tmp_path_factory.mktemp("fuzz"))
    runtime = Runtime.start(Config(data, f"sqlite:///{data / 'f.db'}", (Fernet.generate_key().decode(),), None))
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def fuzz_app(fuzz_runtime: Runtime) -> Litestar:
    return create_app(fuzz_runtime)


@pytest.fixture(scope="module")
def fuzz_auth(fuzz_runtime: Runtime) -> dict[str, str]:
    return {"Authorization": make_tenant(fuzz_runtime, "fuzz")["Authorization"]}


@pytest.fixture(scope="module")
def fuzz_client(fuzz_app: Litestar) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(fuzz_app) as client:
        yield client


@pytest.fixture(scope="module")
def existing_ids(fuzz_client: TestClient, fuzz_auth: dict[str, str]) -> dict[str, str]:  # type: ignore[type-arg]
    ids = {}
    for service, settings_ in (("klaviyo", {"apiKey": "pk_1"}), ("custom", {"url": "https://example.com"})):
        response = fuzz_client.post(
            "/v1/integrations", json={"service": service, "settings": settings_}, headers=fuzz_auth
        )
        ids[service] = response.json()["integration"]["id"]
    return ids


def assert_problem(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text
        body = response.json()
        assert body["status"] == response.status_code
        for error in body.get("errors", []):
            assert set(error) == {"pointer", "rule", "message"}


def write_routes(ids: dict[str, str]) -> list[tuple[str, str]]:
    return [
        ("POST", "/v1/integrations/"),
        ("PUT", f"/v1/integrations/{ids['klaviyo']}"),
        ("PUT", f"/v1/integrations/{ids['custom']}"),
        ("POST", f"/v1/integrations/{ids['custom']}/regenerate-key"),
    ]


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(body=json_values | plausible_bodies, route=st.integers(0, 3))
def test_arbitrary_json_never_500(
    fuzz_client: TestClient,  # type: ignore[type-arg]
    fuzz_auth: dict[str, str],
    existing_ids: dict[str, str],
    body: Any,
    route: int,
) -> None:
    method, path = write_routes(existing_ids)[route]
    response = fuzz_client.request(
        method, path, content=json.dumps(body), headers={**fuzz_auth, "content-type": "application/json"}
    )
    assert_problem(response)
    if response.status_code in (200, 201):
        assert "pk_1" not in response.text


@SETTINGS
@given(
    body=st.binary(max_size=200),
    route=st.integers(0, 3),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
)
def test_arbitrary_bytes_never_500(
    fuzz_client: TestClient,  # type: ignore[type-arg]
    fuzz_auth: dict[str, str],
    existing_ids: dict[str, str],
    body: bytes,
    route: int,
    content_type: str,
) -> None:
    method, path = write_routes(existing_ids)[route]
    response = fuzz_client.request(method, path, content=body, headers={**fuzz_auth, "content-type": content_type})
    assert_problem(response)


# A schema-valid body can still name an unknown service or settings its connector's schema refuses:
# the per-service settings schemas live in the catalogue, not in the OpenAPI document, so 422 is expected.
SCHEMATHESIS_CONFIG = SchemathesisConfig.from_str(
    """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422"]
"""
)


def test_openapi_conformance(fuzz_app: Litestar, fuzz_auth: dict[str, str]) -> None:
    """schemathesis over our own spec: zero server errors, responses as documented (bounded examples).

    ``allow_header_conformance`` is excluded: it misfires on Litestar's 405 answers.
    """
    api_schema = schemathesis.openapi.from_asgi("/docs/openapi.json", fuzz_app, config=SCHEMATHESIS_CONFIG)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            case.call_and_validate(headers=fuzz_auth, excluded_checks=[allow_header_conformance])

        check()
