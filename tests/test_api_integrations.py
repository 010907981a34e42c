"""The configuration API, driven with the seed documents' own requests, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar.testing import TestClient

from interlink.runtime import Runtime
from interlink.secrets import MASK
from interlink.store.tables import integrations
from tests.conftest import make_tenant

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

Client = TestClient  # type: ignore[type-arg]


def create(client: Client, auth: dict[str, str], body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/v1/integrations/", json=body or SEED_CREATE, headers=auth)
    assert response.status_code == 201, response.text
    integration: dict[str, Any] = response.json()["integration"]
    return integration


def test_seed_create_returns_the_integration_with_masked_secret(client: Client, auth: dict[str, str]) -> None:
    integration = create(client, auth)
    assert integration["id"].startswith("int_")
    assert integration["type"] == integration["service"] == "klaviyo"
    assert integration["name"] == "Klaviyo Marketing"
    assert integration["enabled"] is True
    assert integration["status"] == "connected"
    assert integration["last_synced_at"] is None
    assert integration["error_message"] is None
    assert integration["settings"]["apiKey"] == MASK
    assert integration["synchronizations"] == [
        {"event_type": "order.created", "enabled": True},
        {"event_type": "order.updated", "enabled": True},
    ]
    assert "pk_xxx..." not in client.get("/v1/integrations/", headers=auth).text


def test_secret_is_encrypted_at_rest(client: Client, auth: dict[str, str], runtime: Runtime) -> None:
    integration = create(client, auth)
    with runtime.engine.connect() as conn:
        stored = conn.execute(sa.select(integrations.c.settings).where(integrations.c.id == integration["id"]))
        settings = stored.scalar_one()
    assert settings["apiKey"] != "pk_xxx..."
    assert "pk_xxx" not in str(settings)
    assert runtime.keyring.decrypt(settings["apiKey"]) == "pk_xxx..."


def test_list_both_spellings_and_get_with_sync_stats(client: Client, auth: dict[str, str]) -> None:
    integration = create(client, auth)
    for path in ("/v1/integrations/", "/v1/integrations"):
        body = client.get(path, headers=auth).json()
        assert [i["id"] for i in body["integrations"]] == [integration["id"]]
    one = client.get(f"/v1/integrations/{integration['id']}", headers=auth).json()["integration"]
    assert one["sync_stats"] == {"events_last_24h": 0, "events_total": 0, "earliest_event_at": None}
    assert "sync_stats" not in client.get("/v1/integrations", headers=auth).json()["integrations"][0]


def test_search_matches_name_service_and_id(client: Client, auth: dict[str, str]) -> None:
    klaviyo = create(client, auth)
    custom = create(
        client, auth, {"service": "custom", "name": "Warehouse hook", "settings": {"url": "https://example.com/hook"}}
    )

    def found(q: str) -> list[str]:
        body = client.get("/v1/integrations/search", params={"q": q}, headers=auth).json()
        return [i["id"] for i in body["integrations"]]

    assert found("klaviyo") == [klaviyo["id"]]
    assert found("MARKETING") == [klaviyo["id"]]
    assert found("hook") == [custom["id"]]
    assert found(custom["id"][-8:]) == [custom["id"]]
    assert found("%") == []


def test_filters_and_pagination(client: Client, auth: dict[str, str]) -> None:
    ids = [create(client, auth)["id"] for _ in range(3)]
    custom = create(client, auth, {"service": "custom", "settings": {"url": "https://example.com/x"}})
    client.put(f"/v1/integrations/{ids[0]}", json={"enabled": False}, headers=auth)
    by_type = client.get("/v1/integrations?type=custom", headers=auth).json()["integrations"]
    assert [i["id"] for i in by_type] == [custom["id"]]
    off = client.get("/v1/integrations?status=disconnected", headers=auth).json()["integrations"]
    assert [i["id"] for i in off] == [ids[0]]
    on = client.get("/v1/integrations?status=connected", headers=auth).json()["integrations"]
    assert {i["id"] for i in on} == {*ids[1:], custom["id"]}
    page1 = client.get("/v1/integrations?limit=3&page=1", headers=auth).json()
    page2 = client.get("/v1/integrations?limit=3&page=2", headers=auth).json()
    assert page1["has_more"] is True
    assert page2["has_more"] is False
    assert [i["id"] for i in page1["integrations"] + page2["integrations"]] == [*ids, custom["id"]]
    bad = client.get("/v1/integrations?limit=501", headers=auth)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/limit"
    assert client.get("/v1/integrations?status=bogus", headers=auth).status_code == 422


def test_put_merges_keeps_masked_secret_and_disables(client: Client, auth: dict[str, str], runtime: Runtime) -> None:
    integration = create(client, auth)
    path = f"/v1/integrations/{integration['id']}"
    response = client.put(path, json={"enabled": False, "settings": {"apiKey": MASK}}, headers=auth)
    assert response.status_code == 200, response.text
    updated = response.json()["integration"]
    assert updated["status"] == "disconnected"
    assert updated["name"] == "Klaviyo Marketing"
    assert updated["synchronizations"] == integration["synchronizations"]
    with runtime.engine.connect() as conn:
        stored = conn.execute(sa.select(integrations.c.settings).where(integrations.c.id == integration["id"]))
        assert runtime.keyring.decrypt(stored.scalar_one()["apiKey"]) == "pk_xxx..."
    client.put(path, json={"settings": {"apiKey": "pk_new"}, "synchronizations": [{"event_type": "x.y"}]}, headers=auth)
    with runtime.engine.connect() as conn:
        stored = conn.execute(sa.select(integrations.c.settings).where(integrations.c.id == integration["id"]))
        assert runtime.keyring.decrypt(stored.scalar_one()["apiKey"]) == "pk_new"
    again = client.get(path, headers=auth).json()["integration"]
    assert again["synchronizations"] == [{"event_type": "x.y", "enabled": True}]
    assert client.put(path, json={"enabled": True}, headers=auth).json()["integration"]["status"] == "connected"


def test_put_revalidates_merged_settings(client: Client, auth: dict[str, str]) -> None:
    integration = create(client, auth, {"service": "custom", "settings": {"url": "https://example.com/x"}})
    response = client.put(
        f"/v1/integrations/{integration['id']}", json={"settings": {"url": "not a url"}}, headers=auth
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"pointer": "/settings/url", "rule": "format", "message": response.json()["errors"][0]["message"]}
    ]
    removed = client.put(f"/v1/integrations/{integration['id']}", json={"settings": {"url": None}}, headers=auth)
    assert removed.status_code == 422
    assert removed.json()["errors"][0]["rule"] == "required"


def test_validation_errors_name_every_field(client: Client, auth: dict[str, str]) -> None:
    response = client.post(
        "/v1/integrations/",
        json={
            "service": "klaviyo",
            "settings": {"apiKey": 987654321, "bogus": "y"},
            "synchronizations": [{"eventType": "order.created"}, {"eventType": "order.created"}],
        },
        headers=auth,
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = {(e["pointer"], e["rule"]) for e in response.json()["errors"]}
    assert ("/settings/apiKey", "type") in errors
    assert ("/settings/bogus", "additionalProperties") in errors
    assert ("/synchronizations/1/eventType", "uniqueItems") in errors
    assert "987654321" not in response.text


def test_unknown_service_and_unaccepted_event(client: Client, auth: dict[str, str]) -> None:
    unknown = client.post("/v1/integrations/", json={"service": "nope"}, headers=auth)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["pointer"] == "/service"
    stripe = client.post(
        "/v1/integrations/",
        json={
            "service": "stripe",
            "settings": {"apiKey": "sk_test_1"},
            "synchronizations": [{"eventType": "order.created"}],
        },
        headers=auth,
    )
    assert stripe.status_code == 422
    assert stripe.json()["errors"] == [
        {
            "pointer": "/synchronizations/0/eventType",
            "rule": "enum",
            "message": stripe.json()["errors"][0]["message"],
        }
    ]
    assert "order.created" in stripe.json()["errors"][0]["message"]


def test_snake_case_twins_are_accepted(client: Client, auth: dict[str, str]) -> None:
    integration = create(
        client,
        auth,
        {
            "type": "klaviyo",
            "settings": {"apiKey": "pk_1"},
            "synchronizations": [{"event_type": "order.created", "enabled": False}],
        },
    )
    assert integration["service"] == "klaviyo"
    assert integration["synchronizations"] == [{"event_type": "order.created", "enabled": False}]
    clash = client.post("/v1/integrations/", json={"service": "klaviyo", "type": "stripe"}, headers=auth)
    assert clash.status_code == 422


def test_malformed_bodies_are_problems_not_crashes(client: Client, auth: dict[str, str]) -> None:
    headers = {**auth, "content-type": "application/json"}
    bad_json = client.post("/v1/integrations/", content=b"{bad", headers=headers)
    assert bad_json.status_code == 400
    assert bad_json.headers["content-type"].startswith("application/problem+json")
    not_object = client.post("/v1/integrations/", content=b"[1, 2]", headers=headers)
    assert not_object.status_code == 422
    unknown = client.post("/v1/integrations/", json={"service": "klaviyo", "zzz": 1}, headers=auth)
    assert unknown.json()["errors"] == [
        {"pointer": "/zzz", "rule": "additionalProperties", "message": "'zzz' is not a known field"}
    ]


def test_auth_is_required_and_tenants_are_isolated(client: Client, auth: dict[str, str], runtime: Runtime) -> None:
    integration = create(client, auth)
    missing = client.get("/v1/integrations/")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = client.get("/v1/integrations/", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    other = {"Authorization": make_tenant(runtime, "other")["Authorization"]}
    assert client.get("/v1/integrations/", headers=other).json()["integrations"] == []
    path = f"/v1/integrations/{integration['id']}"
    assert client.get(path, headers=other).status_code == 404
    assert client.put(path, json={"enabled": False}, headers=other).status_code == 404
    assert client.delete(path, headers=other).status_code == 404
    assert client.post(f"{path}/regenerate-key", headers=other).status_code == 404
    assert client.get(f"/v1/integrations/search?q={integration['id']}", headers=other).json()["integrations"] == []
    assert client.get(path, headers=auth).status_code == 200


def test_delete(client: Client, auth: dict[str, str]) -> None:
    integration = create(client, auth)
    path = f"/v1/integrations/{integration['id']}"
    assert client.delete(path, headers=auth).status_code == 204
    assert client.get(path, headers=auth).status_code == 404
    assert client.delete(path, headers=auth).status_code == 404


def test_regenerate_key_only_for_custom(client: Client, auth: dict[str, str], runtime: Runtime) -> None:
    klaviyo = create(client, auth)
    refused = client.post(f"/v1/integrations/{klaviyo['id']}/regenerate-key", headers=auth)
    assert refused.status_code == 409
    custom = create(client, auth, {"service": "custom", "settings": {"url": "https://example.com/hook"}})
    first = client.post(f"/v1/integrations/{custom['id']}/regenerate-key", headers=auth).json()
    second = client.post(f"/v1/integrations/{custom['id']}/regenerate-key", headers=auth).json()
    assert first["inbound_key"].startswith("ik_")
    assert second["inbound_key"] != first["inbound_key"]
    with runtime.engine.connect() as conn:
        stored = conn.execute(
            sa.select(integrations.c.inbound_key_hash).where(integrations.c.id == custom["id"])
        ).scalar_one()
    from interlink.store.tenants import hash_token

    assert stored == hash_token(second["inbound_key"]) != hash_token(first["inbound_key"])
    assert second["inbound_key"] not in client.get(f"/v1/integrations/{custom['id']}", headers=auth).text
    assert client.get(f"/v1/integrations/{custom['id']}", headers=auth).json()["integration"]["has_inbound_key"]


def test_catalogue_lists_manifests(client: Client, auth: dict[str, str]) -> None:
    available = client.get("/v1/integrations/available", headers=auth).json()["available"]
    services = {m["service"]: m for m in available}
    assert {"stripe", "klaviyo", "custom", "revenuecat"} <= set(services)
    klaviyo = services["klaviyo"]
    assert klaviyo["settings"]["properties"]["apiKey"]["writeOnly"] is True
    assert klaviyo["accepts_any_event"] is True
    assert any(e["event_type"] == "order.created" for e in klaviyo["sync_events"])
    assert any(e["event_type"] == "invoice.paid" for e in services["stripe"]["sync_events"])


def test_health_needs_no_token(client: Client) -> None:
    assert client.get("/health").json()["status"] == "ok"


def test_mask_is_never_stored_as_a_secret(client: Client, auth: dict[str, str]) -> None:
    created = client.post("/v1/integrations", json={"service": "klaviyo", "settings": {"apiKey": MASK}}, headers=auth)
    assert created.status_code == 422
    assert created.json()["errors"][0] == {
        "pointer": "/settings/apiKey",
        "rule": "required",
        "message": "'apiKey' is required",
    }


def test_a_body_that_is_not_utf8_is_a_400(client: Client, auth: dict[str, str]) -> None:
    for path in ("/v1/integrations/", "/v1/events", "/v1/integrations/events/filter"):
        response = client.post(path, content=b'{"type": "\xff"}', headers={**auth, "content-type": "application/json"})
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "UTF-8" in response.json()["detail"]
