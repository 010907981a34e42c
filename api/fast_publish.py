"""``POST /v1/events``'s fast lane: the common request answered without Litestar's per-request machinery.

Why: the single-event publish is the platform's most frequent call, and on it Litestar's request object,
guard call, body parsing and response building cost as much CPU as storing the event (``bench/publish.py``).
This middleware of that one route answers the common case itself (a token the guard has already
verified lately, a body that passes the route's own checks: the same schema, then the same
``parse_events``) with the route's own answer. Anything else goes on to the route with the body handed
over, so every refusal (401, 400, 413, 415, 422) is the route's own problem+json; an error while
publishing propagates to the app's exception handlers, as it would from the route.
"""

from __future__ import annotations

import msgspec
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from interlink.api import schemas
from interlink.api.auth import TokenCache, bearer_token
from interlink.pipeline import EventIn, Published, parse_events, publish_async
from interlink.runtime import Runtime

__all__ = ["publish_fast_lane", "publish_response"]

MAX_LANE_BODY = 1024 * 1024
"""Larger bodies go to the route, which enforces the app's own limit."""
_HEADERS = [(b"content-type", b"application/json")]


def publish_response(results: list[Published]) -> schemas.PublishResponse:
    """The ``202`` body: each event's id, whether it was a duplicate, and the deliveries it fanned out to."""
    return schemas.PublishResponse(
        events=[
            schemas.PublishedEvent(
                id=r.id,
                type=r.type,
                external_id=r.external_id,
                duplicate=r.duplicate,
                deliveries=len(r.deliveries),
                delivery_ids=r.deliveries,
            )
            for r in results
        ]
    )


def publish_fast_lane(app: ASGIApp) -> ASGIApp:
    """Wrap the publish route ``app`` (a Litestar route middleware)."""

    async def lane(scope: Scope, receive: Receive, send: Send) -> None:
        body, complete = await _read_body(receive)
        if body is None:
            return  # the client went away
        state = scope["litestar_app"].state
        items = _accepted(scope, state.token_cache, body) if complete else None
        if items is None:
            await app(scope, _replay(body, complete, receive), send)
            return
        runtime: Runtime = state.runtime
        tenant_id, events = items
        answer = msgspec.json.encode(publish_response(await publish_async(runtime, tenant_id, events)))
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 202,
            "headers": [*_HEADERS, (b"content-length", str(len(answer)).encode())],
        }
        body_event: HTTPResponseBodyEvent = {"type": "http.response.body", "body": answer, "more_body": False}
        await send(start)
        await send(body_event)

    return lane


def _accepted(scope: Scope, cache: TokenCache, body: bytes) -> tuple[str, list[EventIn]] | None:
    """The tenant and the events, if the route would take this request as it is; else ``None``."""
    headers = dict(scope["headers"])
    content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    token = bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
    tenant = cache.get(token) if token and content_type == b"application/json" else None
    if tenant is None:
        return None
    try:
        data = msgspec.json.decode(body, type=schemas.PublishRequest)
        return tenant.id, parse_events(msgspec.to_builtins(data))
    except Exception:  # the route says what is wrong, in its own words
        return None


async def _read_body(receive: Receive) -> tuple[bytes | None, bool]:
    """The body, up to :data:`MAX_LANE_BODY` (and whether that is all of it); ``None`` on a disconnect."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > MAX_LANE_BODY:
            return b"".join(chunks), False


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A ``receive`` that gives the route what the lane read, then the rest from the client."""
    given = False

    async def replay() -> ReceiveMessage:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": not complete}

    return replay
