"""The OpenAPI 3.1 document: every route has an operation id and an example, and the docs page renders."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

Client = TestClient  # type: ignore[type-arg]


def _has_example(node: Any, spec: dict[str, Any], seen: set[str] | None = None) -> bool:
    """Whether a schema (following $refs) or a media type carries an example anywhere."""
    seen = seen or set()
    if isinstance(node, dict):
        if "example" in node or "examples" in node:
            return True
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            seen.add(ref)
            target = spec
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            return _has_example(target, spec, seen)
        return any(_has_example(v, spec, seen) for v in node.values())
    if isinstance(node, list):
        return any(_has_example(v, spec, seen) for v in node)
    return False


def test_every_operation_has_an_id_and_an_example(client: Client) -> None:
    spec = client.get("/docs/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    operations = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]
    assert len(operations) >= 9
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids))
    for path, method, op in operations:
        success = next(v for k, v in op["responses"].items() if k.startswith("2"))
        documented = [op.get("parameters", []), op.get("requestBody", {}), success]
        assert any(_has_example(part, spec) for part in documented), (method, path)
        if path.startswith("/v1/hooks/"):  # the connector authenticates the vendor (a signature, a key)
            assert op.get("security") == [{}], (method, path)
        elif path.startswith("/v1"):
            assert op.get("security") == [{"BearerAuth": []}], (method, path)
            assert "401" in op["responses"], (method, path)


def test_seed_request_body_is_the_documented_example(client: Client) -> None:
    spec = client.get("/docs/openapi.json").json()
    create = spec["paths"]["/v1/integrations"]["post"]["requestBody"]["content"]["application/json"]
    examples = create["schema"]["examples"]
    assert examples[0]["service"] == "klaviyo"
    assert examples[0]["synchronizations"][0] == {"eventType": "order.created", "enabled": True}


def test_interactive_docs_page(client: Client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert client.get("/docs/swagger").status_code == 200
