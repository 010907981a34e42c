"""``POST /v1/events``'s fast lane answers exactly as the route does, and hands the route everything else."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import sqlalchemy as sa
from litestar import Litestar
from litestar.testing import TestClient

from interlink.api.app import create_app
from interlink.api.fast_publish import MAX_LANE_BODY
from interlink.runtime import Runtime
from interlink.store.tables import published_events
from tests.conftest import make_tenant

EVENT = {"type": "order.created", "id": "o-1", "data": {"order_id": "o_1", "total": 4200}}


def stored(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(published_events)).scalar_one())


def shape(answer: dict[str, Any]) -> list[tuple[str, ...]]:
    return [tuple(sorted(event)) for event in answer["events"]]


def test_the_lane_answers_as_the_route_does(runtime: Runtime) -> None:
    app = create_app(runtime)
    auth = {"Authorization": make_tenant(runtime, "acme")["Authorization"]}
    token = auth["Authorization"].split()[1]
    with TestClient(app) as client:
        assert app.state.token_cache.get(token) is None  # not seen yet: the route (and its guard) answers
        by_route = client.post("/v1/events", json=EVENT, headers=auth)
        assert app.state.token_cache.get(token) is not None  # from now on the lane answers
        by_lane = client.post("/v1/events", json={**EVENT, "id": "o-2"}, headers=auth)
        again = client.post("/v1/events", json={**EVENT, "id": "o-2"}, headers=auth)
    assert (by_route.status_code, by_lane.status_code) == (202, 202)
    assert by_route.headers["content-type"] == by_lane.headers["content-type"] == "application/json"
    assert shape(by_route.json()) == shape(by_lane.json())
    [route_event], [lane_event] = by_route.json()["events"], by_lane.json()["events"]
    assert (lane_event["type"], lane_event["external_id"], lane_event["duplicate"]) == ("order.created", "o-2", False)
    assert lane_event["id"].startswith("pub_")
    assert lane_event["id"] != route_event["id"]
    assert again.json()["events"][0] == {**lane_event, "duplicate": True, "deliveries": 0, "delivery_ids": []}
    assert stored(runtime) == 2


def test_what_the_lane_does_not_take_the_route_refuses_in_its_own_words(runtime: Runtime) -> None:
    app = create_app(runtime)
    auth = {"Authorization": make_tenant(runtime, "acme")["Authorization"]}
    with TestClient(app) as client:
        assert client.post("/v1/events", json=EVENT, headers=auth).status_code == 202  # the token is cached now
        not_json = client.post("/v1/events", content=b'{"type": ', headers={**auth, "content-type": "application/json"})
        no_type = client.post("/v1/events", json={"data": {}}, headers=auth)
        unknown = client.post("/v1/events", json={**EVENT, "colour": "red"}, headers=auth)
        bad_token = client.post("/v1/events", json=EVENT, headers={"Authorization": "Bearer nope"})
        as_text = client.post(
            "/v1/events", content=json.dumps({"type": "a.b"}), headers={**auth, "content-type": "text/plain"}
        )
    assert not_json.status_code == 400
    assert not_json.headers["content-type"] == "application/problem+json"
    assert no_type.status_code == 422
    assert [e["pointer"] for e in no_type.json()["errors"]] == ["/type"]
    assert unknown.status_code == 422
    assert [(e["pointer"], e["rule"]) for e in unknown.json()["errors"]] == [("/colour", "additionalProperties")]
    assert bad_token.status_code == 401
    assert bad_token.headers["www-authenticate"].startswith("Bearer")
    assert as_text.status_code == 202  # the route reads the body it was handed over
    assert stored(runtime) == 2


def call(app: Litestar, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, bytes]:
    """One request straight through the app's ASGI interface, its body in ``chunks``: (status, body)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    incoming = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_body_larger_than_the_lane_reaches_the_route_whole(runtime: Runtime) -> None:
    app = create_app(runtime)
    auth = {"Authorization": make_tenant(runtime, "acme")["Authorization"], "content-type": "application/json"}
    one = json.dumps(EVENT).encode()
    assert call(app, auth, [one])[0] == 202  # the guard has seen the token: the lane would take a small body
    big = {"events": [{"type": "order.created", "data": {"n": i, "text": "x" * 1500}} for i in range(1000)]}
    body = json.dumps(big).encode()
    assert len(body) > MAX_LANE_BODY
    status, answer = call(app, auth, [body[i : i + 65536] for i in range(0, len(body), 65536)])
    assert status == 202, answer
    assert len(json.loads(answer)["events"]) == 1000
    assert stored(runtime) == 1001


def test_a_failure_while_publishing_through_the_lane_is_the_apps_problem_answer(runtime: Runtime) -> None:
    app = create_app(runtime)
    auth = {"Authorization": make_tenant(runtime, "acme")["Authorization"]}
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/v1/events", json=EVENT, headers=auth).status_code == 202
        with runtime.engine.begin() as conn:  # the store breaks under the lane
            conn.exec_driver_sql("ALTER TABLE published_events RENAME TO published_events_gone")
        failed = client.post("/v1/events", json={**EVENT, "id": "o-2"}, headers=auth)
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["detail"] == "an unexpected error occurred; it has been logged"
