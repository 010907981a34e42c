"""Inbound webhooks, ``POST /v1/hooks/{id}``: verified, stored, answered at once, parsed on a worker.

On SQLite and PostgreSQL with the in-process worker and reaper, and through a real ``interlink serve``.
The custom connector is the built-in one; ``signed_test`` below stands for a vendor that signs its
webhooks (an HMAC of the body with a secret setting) and has a handshake, as Stripe or Adapty do.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from litestar.testing import TestClient
from standardwebhooks.webhooks import Webhook

from interlink.api import create_app
from interlink.config import Config
from interlink.connector import (
    Connector,
    ConnectorContext,
    PermanentError,
    TransientError,
    WebhookRequest,
    WebhookResult,
)
from interlink.envelope import envelope
from interlink.pipeline.hook_worker import process_request, reap_hooks
from interlink.pipeline.hooks import FAILURES_BEFORE_ERROR, MAX_ATTEMPTS
from interlink.registry import ConnectorRegistry, Register, load_registry
from interlink.runtime import Runtime
from interlink.store.tables import integrations, webhook_requests
from interlink.testing.emulators.appsflyer import AppsFlyerEmulator
from tests.conftest import make_tenant
from tests.pipeline_helpers import create_custom, wait_for
from tests.redis_helpers import private_redis, worker_process
from tests.server import running_server
from tests.sink import Sink, running_sink
from tests.test_pipeline_redis import node_config, worker_env

Client = TestClient  # type: ignore[type-arg]
SECRET = "whk_test_secret_value_1234"


class SignedConnector(Connector):
    """A vendor that signs each webhook: ``x-test-signature`` is the HMAC-SHA256 of the body with ``webhookSecret``.

    ``{"check": true}`` is its handshake. A body's ``fail`` makes ``handle_webhook`` fail: ``permanent``, or
    ``transient`` for the first ``transient_failures`` calls with such a body.
    """

    transient_failures: ClassVar[int] = 0
    calls: ClassVar[int] = 0

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        raise PermanentError("signed_test does not deliver")

    def verify_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult | None:
        expected = hmac.new(str(ctx.settings["webhookSecret"]).encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Test-Signature", ""), expected):  # names in any case
            raise PermanentError("the signature does not match the body", setting="webhookSecret")
        if json.loads(request.body).get("check"):
            return WebhookResult(response_status=202, response_body={"handshake": "ok"})
        return None

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        if request.headers.get("X-Test-Signature") != "********":
            raise PermanentError("the stored headers should have the signature masked")
        body = json.loads(request.body)
        if body.get("fail") == "permanent":
            raise PermanentError("the body names no customer")
        if body.get("fail") == "transient":
            type(self).calls += 1
            if type(self).calls <= type(self).transient_failures:
                raise TransientError("the vendor's API is down")
        event = envelope(
            id=body["id"], type=body["type"], source="signed_test", occurred_at=body.get("at"), raw=body, data=body
        )
        return WebhookResult(events=[event])


class PlainConnector(Connector):
    """Delivers only: it receives no webhooks."""

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        return None


def _manifest(service: str, capabilities: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "service": service,
        "name": service,
        "version": "1.0.0",
        "description": "A test connector.",
        "categories": ["test"],
        "capabilities": capabilities,
        "settings": {
            "type": "object",
            "properties": settings,
            "additionalProperties": False,
        },
        "sync_events": [
            {"event_type": "charge.succeeded", "direction": "inbound", "description": "A charge."},
            {"event_type": "charge.succeeded", "direction": "outbound", "description": "A charge."},
        ],
    }


def hook_registry() -> ConnectorRegistry:
    """The installed connectors plus ``signed_test`` and ``plain_test``, registered as a plugin would."""
    registry = load_registry()
    register = Register(registry, metadata.EntryPoint("hook_tests", "tests.test_hooks", "interlink"))
    secret = {"webhookSecret": {"type": "string", "writeOnly": True, "minLength": 1}}
    register(SignedConnector, _manifest("signed_test", ["deliver", "handle_webhook"], secret))
    register(PlainConnector, _manifest("plain_test", ["deliver"], {}))
    assert {"signed_test", "plain_test", "custom"} <= set(registry.connectors), registry.broken
    return registry


@pytest.fixture
def fast_config(config: Config) -> Config:
    return dataclasses.replace(
        config, redispatch_after=1.0, reaper_interval=0.2, lease_seconds=5.0, hook_max_bytes=2000
    )


@pytest.fixture
def live(fast_config: Config) -> Iterator[Runtime]:
    """A runtime whose in-process worker and reaper run."""
    SignedConnector.calls = SignedConnector.transient_failures = 0
    runtime = Runtime.start(fast_config, registry=hook_registry())
    runtime.pipeline.start(threads=4)
    yield runtime
    runtime.close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as s:
        yield s


def inbound_custom(api: Client, auth: dict[str, str], sink: Sink) -> tuple[dict[str, Any], str]:
    """A custom integration with its inbound key (the one it receives with: it delivers nothing)."""
    integration = create_custom(api, auth, sink.url("/unused"), event_types=())
    response = api.post(f"/v1/integrations/{integration['id']}/regenerate-key", headers=auth)
    assert response.status_code == 200, response.text
    key: str = response.json()["inbound_key"]
    assert key.startswith("ik_")
    return integration, key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def hooks_log(api: Client, auth: dict[str, str], integration_id: str, **params: Any) -> list[dict[str, Any]]:
    response = api.get(f"/v1/integrations/{integration_id}/hooks", params=params, headers=auth)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["hooks"]
    return items


def settled(api: Client, auth: dict[str, str], integration_id: str, count: int) -> list[dict[str, Any]] | None:
    """The log once its newest ``count`` requests are all finished (a ``wait_for`` condition)."""
    items = hooks_log(api, auth, integration_id)
    done = [i for i in items if i["status"] in ("processed", "failed", "rejected")]
    return items if len(items) >= count and len(done) == len(items) else None


def inbound_events(api: Client, auth: dict[str, str], integration_id: str) -> list[dict[str, Any]]:
    response = api.post("/v1/integrations/events/filter", json={"integrationId": integration_id}, headers=auth)
    assert response.status_code == 200, response.text
    return [e for e in response.json()["events"] if e["direction"] == "inbound"]


def integration_row(runtime: Runtime, integration_id: str) -> sa.Row[Any]:
    with runtime.engine.connect() as conn:
        return conn.execute(sa.select(integrations).where(integrations.c.id == integration_id)).one()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"x-test-signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def create_signed(api: Client, auth: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {"service": "signed_test", "settings": {"webhookSecret": SECRET}, **extra}
    response = api.post("/v1/integrations", json=body, headers=auth)
    assert response.status_code == 201, response.text
    integration: dict[str, Any] = response.json()["integration"]
    return integration


# -- the custom integration ------------------------------------------------------------------------


def test_a_custom_hook_becomes_an_inbound_event_that_fans_out(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink
) -> None:
    source, key = inbound_custom(api, tenant, sink)
    create_custom(api, tenant, sink.url("/out"), event_types=("order.created",))
    event = {"type": "order.created", "id": "ord-1", "occurred_at": "2025-01-31T12:00:00Z", "data": {"total": 42}}
    raw = json.dumps(event).encode()
    response = api.post(f"/v1/hooks/{source['id']}", content=raw, headers=bearer(key))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["received"] is True
    assert answer["id"].startswith("hook_")
    [entry] = wait_for(lambda: settled(api, tenant, source["id"], 1))
    assert entry["id"] == answer["id"]
    assert (entry["status"], entry["response_status"], entry["events_created"], entry["error"]) == (
        "processed",
        200,
        1,
        None,
    )
    assert entry["headers"]["authorization"] == "********"
    assert key not in json.dumps(entry)
    assert entry["body_size"] == len(raw)
    [inbound] = inbound_events(api, tenant, source["id"])
    assert (inbound["event_type"], inbound["status"]) == ("order.created", "succeeded")
    payload = api.get(f"/v1/integrations/events/{inbound['id']}/payload", headers=tenant).json()
    assert payload["data"]["id"] == "ord-1"
    assert payload["data"]["source"] == "custom"
    assert payload["data"]["data"] == {"total": 42}
    assert payload["occurred_at"] == "2025-01-31T12:00:00Z"
    wait_for(lambda: sink.at("/out"))
    [delivered] = sink.at("/out")
    sent = json.loads(delivered.body)
    assert sent["type"] == "order.created"
    assert sent["data"]["data"] == {"total": 42}
    assert sink.at("/unused") == []  # the source does not receive its own event back


def test_a_batch_is_read_like_post_v1_events(api: Client, tenant: dict[str, str], live: Runtime, sink: Sink) -> None:
    source, key = inbound_custom(api, tenant, sink)
    batch = {"events": [{"type": "a.one", "id": "1"}, {"type": "a.two", "data": [1, 2]}, {"type": "a.one", "id": "1"}]}
    assert api.post(f"/v1/hooks/{source['id']}", json=batch, headers=bearer(key)).status_code == 200
    [entry] = wait_for(lambda: settled(api, tenant, source["id"], 1))
    assert entry["events_created"] == 2  # the repeated id is one event
    assert sorted(e["event_type"] for e in inbound_events(api, tenant, source["id"])) == ["a.one", "a.two"]
    bad = api.post(f"/v1/hooks/{source['id']}", content=b'{"events": [{"data": 1}]}', headers=bearer(key))
    assert bad.status_code == 200  # verified and stored: parsing is the worker's, and fails there
    failed = wait_for(lambda: settled(api, tenant, source["id"], 2))[0]
    assert failed["status"] == "failed"
    assert "/events/0/type" in failed["error"]
    assert failed["attempts"] == 1  # a body that cannot be read is not tried again


def test_a_bad_key_is_refused_logged_and_stores_nothing(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink
) -> None:
    source, key = inbound_custom(api, tenant, sink)
    body = b'{"type": "order.created", "id": "x-1"}'
    for headers in ({"Authorization": "Bearer ik_wrong"}, {}, {"Authorization": key}):
        problem = assert_problem(api.post(f"/v1/hooks/{source['id']}", content=body, headers=headers), 401)
        assert "inbound API key" in problem["detail"]
    log = hooks_log(api, tenant, source["id"])
    assert [(e["status"], e["response_status"], e["body_size"]) for e in log] == [("rejected", 401, len(body))] * 3
    assert all("inbound API key" in e["error"] for e in log)
    with live.engine.connect() as conn:
        bodies = conn.execute(sa.select(webhook_requests.c.body)).scalars().all()
    assert bodies == [b"", b"", b""]  # a refused request's body is not kept
    assert inbound_events(api, tenant, source["id"]) == []
    assert integration_row(live, source["id"]).hook_failures == 3
    assert api.post(f"/v1/hooks/{source['id']}", content=body, headers=bearer(key)).status_code == 200
    assert integration_row(live, source["id"]).hook_failures == 0  # a verified request resets the count


def test_without_an_inbound_key_nothing_is_accepted(api: Client, tenant: dict[str, str], live: Runtime) -> None:
    source = create_custom(api, tenant, "https://example.com/in", event_types=())
    problem = assert_problem(api.post(f"/v1/hooks/{source['id']}", json={"type": "t"}, headers=bearer("ik_x")), 401)
    assert "regenerate-key" in problem["detail"]


def test_a_regenerated_key_replaces_the_old_one_at_once(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink
) -> None:
    source, old = inbound_custom(api, tenant, sink)
    assert api.post(f"/v1/hooks/{source['id']}", json={"type": "t", "id": "1"}, headers=bearer(old)).status_code == 200
    new = api.post(f"/v1/integrations/{source['id']}/regenerate-key", headers=tenant).json()["inbound_key"]
    assert new != old
    assert api.post(f"/v1/hooks/{source['id']}", json={"type": "t", "id": "2"}, headers=bearer(old)).status_code == 401
    assert api.post(f"/v1/hooks/{source['id']}", json={"type": "t", "id": "3"}, headers=bearer(new)).status_code == 200


def test_the_same_vendor_event_twice_is_recorded_once(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink
) -> None:
    source, key = inbound_custom(api, tenant, sink)
    create_custom(api, tenant, sink.url("/out"), event_types=("order.paid",))
    with_id = {"type": "order.paid", "id": "ord-7-paid", "data": {"n": 1}}
    without_id = b'{"type": "order.paid", "data": {"n": 2}}'
    for _ in range(2):
        assert api.post(f"/v1/hooks/{source['id']}", json=with_id, headers=bearer(key)).status_code == 200
        assert api.post(f"/v1/hooks/{source['id']}", content=without_id, headers=bearer(key)).status_code == 200
    log = wait_for(lambda: settled(api, tenant, source["id"], 4))
    assert [e["status"] for e in log] == ["processed"] * 4
    assert sum(e["events_created"] for e in log) == 2
    assert len(inbound_events(api, tenant, source["id"])) == 2
    wait_for(lambda: len(sink.at("/out")) == 2)
    assert sorted(json.loads(r.body)["data"]["data"]["n"] for r in sink.at("/out")) == [1, 2]


# -- limits, failures in a row, unknown and disabled integrations ----------------------------------


def test_a_body_over_the_limit_is_413(api: Client, tenant: dict[str, str], live: Runtime, sink: Sink) -> None:
    source, key = inbound_custom(api, tenant, sink)
    big = json.dumps({"type": "t", "data": {"x": "y" * 2000}}).encode()
    problem = assert_problem(api.post(f"/v1/hooks/{source['id']}", content=big, headers=bearer(key)), 413)
    assert "2000 bytes" in problem["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body itself is measured
        yield big[:1500]
        yield big[1500:]

    streamed = api.post(f"/v1/hooks/{source['id']}", content=chunks(), headers=bearer(key))
    assert_problem(streamed, 413)
    log = hooks_log(api, tenant, source["id"])
    assert [(e["status"], e["response_status"]) for e in log] == [("rejected", 413)] * 2
    assert integration_row(live, source["id"]).hook_failures == 0  # too large is not a failed verification
    small = {"type": "t", "data": {"x": "y" * 1000}}
    assert api.post(f"/v1/hooks/{source['id']}", json=small, headers=bearer(key)).status_code == 200


def test_failures_in_a_row_put_the_integration_in_error_until_a_verified_one(
    api: Client, tenant: dict[str, str], live: Runtime, sink: Sink
) -> None:
    endpoint = api.post("/v1/webhooks", json={"url": sink.url("/notices")}, headers=tenant).json()["webhook"]
    signed = create_signed(api, tenant)
    body = b'{"id": "ch_1", "type": "charge.succeeded"}'
    path = f"/v1/hooks/{signed['id']}"
    for _ in range(FAILURES_BEFORE_ERROR - 1):
        assert_problem(api.post(path, content=body, headers=sign(body, "not-the-secret")), 401)
    assert api.get(f"/v1/integrations/{signed['id']}", headers=tenant).json()["integration"]["status"] == "connected"
    assert_problem(api.post(path, content=body, headers=sign(body, "not-the-secret")), 401)
    broken = api.get(f"/v1/integrations/{signed['id']}", headers=tenant).json()["integration"]
    assert broken["status"] == "error"
    assert broken["error_message"] == (
        f"{FAILURES_BEFORE_ERROR} webhooks in a row failed verification: the signature does not match the body"
        " — check settings.webhookSecret"
    )
    assert api.post(path, content=body, headers=sign(body)).status_code == 200
    fixed = api.get(f"/v1/integrations/{signed['id']}", headers=tenant).json()["integration"]
    assert (fixed["status"], fixed["error_message"]) == ("connected", None)
    assert integration_row(live, signed["id"]).hook_failures == 0
    # The tenant hears of both moves, signed per Standard Webhooks.
    notices = wait_for(lambda: sink.at("/notices") if len(sink.at("/notices")) >= 2 else None)
    verifier = Webhook(endpoint["signing_secret"])
    told = {t["type"]: t for t in (verifier.verify(n.body, n.headers) for n in notices)}  # delivered in any order
    assert sorted(told) == ["integration.error", "integration.recovered"]
    assert {t["data"]["integration_id"] for t in told.values()} == {signed["id"]}
    assert told["integration.error"]["data"]["error_message"] == broken["error_message"]


def test_a_verified_hook_clears_only_an_error_that_hooks_set(
    api: Client, tenant: dict[str, str], live: Runtime
) -> None:
    signed = create_signed(api, tenant)
    with live.engine.begin() as conn:  # as a failed sync leaves it, after webhooks had failed too
        conn.execute(
            integrations.update()
            .where(integrations.c.id == signed["id"])
            .values(status="error", error_message="Invalid API key — update settings.apiKey", hook_failures=7)
        )
    body = b'{"id": "ch_2", "type": "charge.succeeded"}'
    assert api.post(f"/v1/hooks/{signed['id']}", content=body, headers=sign(body)).status_code == 200
    row = integration_row(live, signed["id"])
    assert (row.status, row.error_message, row.hook_failures) == (
        "error",
        "Invalid API key — update settings.apiKey",
        0,
    )


def test_unknown_integrations_and_connectors_without_webhooks_are_404(
    api: Client, tenant: dict[str, str], live: Runtime
) -> None:
    plain = api.post("/v1/integrations", json={"service": "plain_test"}, headers=tenant).json()["integration"]
    for integration_id in ("int_01m8aekr6gq8r6v0xf3mq1grjz", plain["id"], "x" * 300):
        assert_problem(api.post(f"/v1/hooks/{integration_id}", content=b"{}"), 404)
    endpoint = create_custom(api, tenant, "https://example.com/notify", event_types=())
    with live.engine.begin() as conn:  # a tenant's notification endpoint (/v1/webhooks) is no integration
        conn.execute(integrations.update().where(integrations.c.id == endpoint["id"]).values(kind="notification"))
    assert_problem(api.post(f"/v1/hooks/{endpoint['id']}", json={"type": "t"}), 404)
    assert_problem(api.get(f"/v1/integrations/{endpoint['id']}/hooks", headers=tenant), 404)
    other = {"Authorization": make_tenant(live, "other")["Authorization"]}
    signed = create_signed(api, tenant)
    assert_problem(api.get(f"/v1/integrations/{signed['id']}/hooks", headers=other), 404)
    assert_problem(api.get(f"/v1/integrations/{signed['id']}/hooks"), 401)


def test_a_disabled_integration_refuses_verified_hooks_with_409(
    api: Client, tenant: dict[str, str], live: Runtime
) -> None:
    signed = create_signed(api, tenant, enabled=False)
    body = b'{"id": "ch_3", "type": "charge.succeeded"}'
    assert_problem(api.post(f"/v1/hooks/{signed['id']}", content=body, headers=sign(body, "wrong")), 401)
    problem = assert_problem(api.post(f"/v1/hooks/{signed['id']}", content=body, headers=sign(body)), 409)
    assert "disabled" in problem["detail"]
    log = hooks_log(api, tenant, signed["id"])
    assert [(e["status"], e["response_status"]) for e in log] == [("rejected", 409), ("rejected", 401)]
    assert inbound_events(api, tenant, signed["id"]) == []


# -- a signed vendor: handshake, signature, worker failures ----------------------------------------


def test_a_handshake_is_answered_as_the_connector_says_and_stores_nothing(
    api: Client, tenant: dict[str, str], live: Runtime
) -> None:
    signed = create_signed(api, tenant)
    body = b'{"check": true}'
    response = api.post(f"/v1/hooks/{signed['id']}", content=body, headers=sign(body))
    assert (response.status_code, response.json()) == (202, {"handshake": "ok"})
    assert hooks_log(api, tenant, signed["id"]) == []


def test_signed_hooks_mask_signatures_and_fail_or_retry_on_the_worker(
    api: Client, tenant: dict[str, str], live: Runtime
) -> None:
    SignedConnector.transient_failures = 1
    signed = create_signed(api, tenant)
    path = f"/v1/hooks/{signed['id']}"
    permanent = b'{"id": "ch_4", "type": "charge.succeeded", "fail": "permanent"}'
    transient = b'{"id": "ch_5", "type": "charge.succeeded", "fail": "transient"}'
    first = api.post(path, content=permanent, headers=sign(permanent)).json()["id"]
    second = api.post(path, content=transient, headers=sign(transient)).json()["id"]
    log = wait_for(lambda: settled(api, tenant, signed["id"], 2), timeout=20)
    by_id = {e["id"]: e for e in log}
    failed, retried = by_id[first], by_id[second]
    assert (failed["status"], failed["error"], failed["attempts"]) == ("failed", "the body names no customer", 1)
    assert (retried["status"], retried["events_created"], retried["attempts"]) == ("processed", 1, 2)
    assert failed["headers"]["x-test-signature"] == "********"
    assert SECRET not in json.dumps(log)
    [inbound] = inbound_events(api, tenant, signed["id"])
    assert inbound["event_type"] == "charge.succeeded"


def test_a_request_that_keeps_failing_gives_up_after_the_last_attempt(config: Config) -> None:
    """The worker step itself, on a runtime without a worker: the last attempt fails it for good."""
    SignedConnector.transient_failures = 1_000
    runtime = Runtime.start(config, registry=hook_registry())
    try:
        with TestClient(create_app(runtime)) as api:
            tenant = {"Authorization": make_tenant(runtime, "acme")["Authorization"]}
            signed = create_signed(api, tenant)
            body = b'{"id": "ch_6", "type": "charge.succeeded", "fail": "transient"}'
            request_id = api.post(f"/v1/hooks/{signed['id']}", content=body, headers=sign(body)).json()["id"]
            process_request(runtime, request_id)
            [entry] = hooks_log(api, tenant, signed["id"])
            assert (entry["status"], entry["attempts"], entry["error"]) == ("received", 1, "the vendor's API is down")
            with runtime.engine.begin() as conn:  # as if it had been tried all but once already
                conn.execute(webhook_requests.update().values(attempts=MAX_ATTEMPTS - 1))
            process_request(runtime, request_id)
            [entry] = hooks_log(api, tenant, signed["id"])
            assert (entry["status"], entry["attempts"]) == ("failed", MAX_ATTEMPTS)
            assert entry["error"] == f"gave up after {MAX_ATTEMPTS} attempts; last error: the vendor's API is down"
            process_request(runtime, request_id)  # a duplicate message does nothing
            assert hooks_log(api, tenant, signed["id"]) == [entry]
    finally:
        runtime.close()


# -- lost messages and lost workers ----------------------------------------------------------------


def test_the_reaper_processes_requests_whose_message_or_worker_was_lost(config: Config, sink: Sink) -> None:
    """An API node without a worker stores requests and its messages die with it; a later node's reaper
    finds them, and a request left ``processing`` by a killed worker once its lease expired."""
    cfg = dataclasses.replace(config, redispatch_after=1.0, reaper_interval=0.2, lease_seconds=5.0)
    first = Runtime.start(cfg, registry=hook_registry())  # no worker: messages stay in its memory
    with TestClient(create_app(first)) as api:
        tenant = {"Authorization": make_tenant(first, "acme")["Authorization"]}
        source, key = inbound_custom(api, tenant, sink)
        lost = api.post(f"/v1/hooks/{source['id']}", json={"type": "t", "id": "lost"}, headers=bearer(key)).json()
        orphan = api.post(f"/v1/hooks/{source['id']}", json={"type": "t", "id": "orphan"}, headers=bearer(key)).json()
    first.close()
    expired = datetime.now(UTC) - timedelta(seconds=1)
    with first.engine.begin() as conn:  # what a worker SIGKILLed mid-way leaves behind
        conn.execute(
            webhook_requests.update()
            .where(webhook_requests.c.id == orphan["id"])
            .values(status="processing", lease_token="dead", lease_expires_at=expired, attempts=1)
        )
    second = Runtime.start(cfg, registry=hook_registry())
    second.pipeline.start(threads=2)
    try:
        with TestClient(create_app(second)) as api:
            log = wait_for(lambda: settled(api, tenant, source["id"], 2), timeout=20)
            assert {e["id"]: (e["status"], e["events_created"]) for e in log} == {
                lost["id"]: ("processed", 1),
                orphan["id"]: ("processed", 1),
            }
            assert {e["id"]: e["attempts"] for e in log} == {lost["id"]: 1, orphan["id"]: 2}
            assert len(inbound_events(api, tenant, source["id"])) == 2
    finally:
        second.close()


def test_one_reaper_pass_sends_each_request_once(config: Config, sink: Sink) -> None:
    runtime = Runtime.start(dataclasses.replace(config, redispatch_after=0.5), registry=hook_registry())
    try:
        with TestClient(create_app(runtime)) as api:
            tenant = {"Authorization": make_tenant(runtime, "acme")["Authorization"]}
            source, key = inbound_custom(api, tenant, sink)
            stored = api.post(f"/v1/hooks/{source['id']}", json={"type": "t"}, headers=bearer(key)).json()
        later = datetime.now(UTC) + timedelta(seconds=1)
        assert reap_hooks(runtime, later) == [stored["id"]]
        assert reap_hooks(runtime, later) == []  # dispatched at `later`: not stale yet at `later`
    finally:
        runtime.close()


@pytest.mark.postgres
def test_with_redis_a_crash_of_the_broker_loses_no_stored_request(tmp_path: Path, postgres_url: str) -> None:
    """API node + ``interlink worker`` process + Redis: requests stored while the broker is down, or whose
    messages died with it, are parsed by the worker once the reaper sends them again."""
    with private_redis(tmp_path) as redis_server, running_sink() as sink:
        cfg = node_config(tmp_path, postgres_url, redis_server.url, Fernet.generate_key().decode())
        api_node = Runtime.start(cfg)  # enqueues only: no worker in this process
        try:
            with TestClient(create_app(api_node)) as api:
                tenant = {"Authorization": make_tenant(api_node, "acme")["Authorization"]}
                source, key = inbound_custom(api, tenant, sink)
                path = f"/v1/hooks/{source['id']}"
                assert api.post(path, json={"type": "t", "id": "queued"}, headers=bearer(key)).status_code == 200
                redis_server.kill()  # the queued message dies with it
                assert api.post(path, json={"type": "t", "id": "down"}, headers=bearer(key)).status_code == 200
                redis_server.start()  # back, and empty
                with worker_process(worker_env(cfg)):
                    log = wait_for(lambda: settled(api, tenant, source["id"], 2), timeout=40)
                assert [(e["status"], e["events_created"]) for e in log] == [("processed", 1)] * 2
        finally:
            api_node.close()


# -- the real server --------------------------------------------------------------------------------


def test_through_the_real_server(tmp_path: Path, sink: Sink) -> None:
    with running_server(tmp_path / "data", extra_env={"INTERLINK_HOOK_MAX_BYTES": "4096"}) as server:
        base, auth = server.base_url, {"Authorization": f"Bearer {server.token}"}
        created = httpx.post(
            f"{base}/v1/integrations/", json={"service": "custom", "settings": {"url": sink.url("/x")}}, headers=auth
        ).json()["integration"]
        key = httpx.post(f"{base}/v1/integrations/{created['id']}/regenerate-key", headers=auth).json()["inbound_key"]
        url = f"{base}/v1/hooks/{created['id']}"
        sent = httpx.post(url, json={"type": "order.created", "id": "srv-1"}, headers=bearer(key))
        assert sent.status_code == 200, sent.text
        refused = httpx.post(url, json={"type": "order.created"}, headers=bearer("ik_nope"))
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        too_big = httpx.post(url, content=b"x" * 5000, headers=bearer(key))
        assert too_big.status_code == 413
        streamed = httpx.post(url, content=iter([b"x" * 3000, b"x" * 3000]), headers=bearer(key))
        assert streamed.status_code == 413

        def processed() -> bool:
            log = httpx.get(f"{base}/v1/integrations/{created['id']}/hooks", headers=auth).json()["hooks"]
            return any(e["status"] == "processed" and e["events_created"] == 1 for e in log)

        wait_for(processed)
        found = httpx.post(
            f"{base}/v1/integrations/events/filter", json={"integrationId": created["id"]}, headers=auth
        ).json()["events"]
        assert [(e["direction"], e["event_type"]) for e in found] == [("inbound", "order.created")]


def test_a_webhook_sent_with_get_is_read_from_its_query_string(
    api: Client, tenant: dict[str, str], live: Runtime
) -> None:
    """AppsFlyer's Push API in GET mode: the fields travel in the query string, which the worker gets too."""
    with AppsFlyerEmulator() as vendor:
        settings = vendor.integration_settings()
        created = api.post(
            "/v1/integrations", json={"service": "appsflyer", "name": "AppsFlyer", "settings": settings}, headers=tenant
        )
        assert created.status_code == 201, created.text
        integration_id = created.json()["integration"]["id"]
        fields = {
            k: str(v) for k, v in vendor.webhook_event("af_purchase", event_revenue="9.99").items() if v is not None
        }
        path = f"/v1/hooks/{integration_id}"
        refused = api.get(path, params=fields, headers={settings["webhookHeader"]: "wrong-token"})
        assert_problem(refused, 401)
        sent = api.get(path, params=fields, headers={settings["webhookHeader"]: settings["webhookAuthorization"]})
        assert sent.status_code == 200, sent.text
        wait_for(lambda: settled(api, tenant, integration_id, 2))
        [event] = inbound_events(api, tenant, integration_id)
        assert event["event_type"] == "in-app-event"
        payload = api.get(f"/v1/integrations/events/{event['id']}/payload", headers=tenant).json()
        assert payload["data"]["raw"]["event_name"] == "af_purchase"
