"""Inbound webhooks: vendors POST to ``/v1/hooks/{id}``; a tenant reads each integration's hooks log.

The receiving route carries no tenant token: the integration id names the receiver and the connector's
``verify_webhook`` authenticates the sender (a signature, a configured ``Authorization`` value, the
custom integration's inbound key). Verification runs in a thread, so the event loop never waits on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import PathParameter, QueryParameter
from msgspec import Meta, Struct

from interlink.api.errors import problem, problem_responses
from interlink.api.schemas import EXAMPLE_ID, Problem
from interlink.connector import WebhookRequest
from interlink.pipeline import hooks
from interlink.runtime import Runtime
from interlink.store.tenants import Tenant

__all__ = ["HookController", "HookLogController", "HookReceived", "HookRequest", "HookRequestPage"]

IntegrationId = Annotated[str, PathParameter(description="The integration's id", examples=[Example(value=EXAMPLE_ID)])]
PageParam = Annotated[int, QueryParameter(ge=1, le=100_000, description="Page number, from 1")]
LimitParam = Annotated[int, QueryParameter(ge=1, le=500, description="Requests per page, 1 to 500")]
EXAMPLE_HOOK_ID = "hook_01jd3k4m5n6p7q8r9s0t1v2w3z"


class HookReceived(Struct):
    """A verified request, stored: a worker turns it into events shortly."""

    received: bool
    id: Annotated[str, Meta(examples=[EXAMPLE_HOOK_ID])]


class HookRequest(Struct):
    """One request a vendor sent to the integration's inbound URL, as the hooks log shows it."""

    id: Annotated[str, Meta(examples=[EXAMPLE_HOOK_ID])]
    received_at: datetime
    method: Annotated[str, Meta(examples=["POST"])]
    status: Annotated[str, Meta(examples=["processed"], pattern="^(received|processing|processed|failed|rejected)$")]
    response_status: Annotated[int, Meta(examples=[200])] | None
    """What the vendor was answered."""
    error: Annotated[str, Meta(examples=["the body is not JSON: Expecting value: line 1 column 1 (char 0)"])] | None
    body_size: Annotated[int, Meta(examples=[1834])]
    events_created: Annotated[int, Meta(examples=[1])]
    """Inbound events this request created; events already recorded (a vendor's retry) are not counted."""
    attempts: int
    processed_at: datetime | None
    headers: Annotated[dict[str, str], Meta(examples=[{"authorization": "********", "content-type": "text/json"}])]


class HookRequestPage(Struct):
    hooks: list[HookRequest]
    page: Annotated[int, Meta(examples=[1])]
    limit: Annotated[int, Meta(examples=[50])]
    has_more: bool


def _headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The request's headers, names in lower case; a repeated header's values joined by ``, `` (RFC 9110)."""
    merged: dict[str, str] = {}
    for name, value in request.headers.multi_items():
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


def _answer(answer: hooks.HookAnswer) -> Response[Any]:
    if answer.problem:
        return problem(answer.status, str(answer.body), headers=answer.headers)
    return Response(answer.body, status_code=answer.status, headers=answer.headers)


class HookController(Controller):
    """``/v1/hooks/{id}``: where vendors send their webhooks (Stripe, RevenueCat, Adapty, your own system)."""

    path = "/v1/hooks"
    tags = ["hooks"]

    @post(
        "/{integration_id:str}",
        operation_id="receiveWebhook",
        status_code=200,
        request_max_body_size=None,  # the limit is INTERLINK_HOOK_MAX_BYTES, checked below
        security=[{}],  # no tenant token: the connector verifies the vendor's signature or key
        responses={
            200: ResponseSpec(data_container=HookReceived, description="Verified and stored"),
            **problem_responses(400, 404, 409, 413),
            503: ResponseSpec(
                data_container=Problem, description="Try again later", media_type="application/problem+json"
            ),
        },
        summary="Receive a webhook",
    )
    async def receive(
        self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], integration_id: IntegrationId
    ) -> Response[Any]:
        """A vendor's webhook: verified by the integration's connector, stored, answered at once.

        Verified: ``200 {"received": true, "id": "hook_..."}`` (or the connector's own answer to a
        handshake) and the body is parsed into events on a worker. Not verified: ``401``, and the attempt
        shows in ``GET /v1/integrations/{id}/hooks``. The custom integration takes its inbound key as
        ``Authorization: Bearer ik_...``; other services verify what their vendor sends (signatures).
        """
        return await _receive(request, runtime, integration_id)

    @get(
        "/{integration_id:str}",
        operation_id="receiveWebhookByGet",
        status_code=200,
        security=[{}],  # no tenant token: the connector verifies the vendor's key
        responses={
            200: ResponseSpec(data_container=HookReceived, description="Verified and stored"),
            **problem_responses(404, 409, 413),
            503: ResponseSpec(
                data_container=Problem, description="Try again later", media_type="application/problem+json"
            ),
        },
        summary="Receive a webhook sent with GET",
    )
    async def receive_by_get(
        self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], integration_id: IntegrationId
    ) -> Response[Any]:
        """A vendor's webhook whose fields are in the query string (AppsFlyer's Push API in GET mode).

        Handled as ``POST`` is: verified by the connector, stored with its query string, answered at once.
        """
        return await _receive(request, runtime, integration_id)


async def _receive(request: Request[Any, Any, Any], runtime: Runtime, integration_id: str) -> Response[Any]:
    """Verify, store and answer a vendor's request (POST or GET); the connector sees the query string too."""
    received_at = datetime.now(UTC)
    target = await sync_to_thread(hooks.find_target, runtime, integration_id)
    limit = runtime.config.hook_max_bytes
    query = request.url.query
    path = request.url.path + (f"?{query}" if query else "")
    incoming = WebhookRequest(request.method, path, _headers(request), b"", received_at)
    announced = request.headers.get("content-length")
    if announced is not None and not announced.strip().isdigit():
        return problem(400, "the Content-Length header is not a number of bytes")
    if announced is not None and int(announced) > limit:
        return _answer(await sync_to_thread(hooks.refuse_too_large, runtime, target, incoming, int(announced)))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return _answer(await sync_to_thread(hooks.refuse_too_large, runtime, target, incoming, len(body)))
    incoming = WebhookRequest(incoming.method, incoming.path, incoming.headers, bytes(body), received_at)
    return _answer(await sync_to_thread(hooks.receive, runtime, target, incoming))


class HookLogController(Controller):
    """``/v1/integrations/{id}/hooks``: every webhook request the integration received, and what became of it."""

    path = "/v1/integrations/{integration_id:str}"
    tags = ["hooks"]

    @get(
        "/hooks",
        operation_id="listWebhookRequests",
        responses=problem_responses(404),
        sync_to_thread=True,
        summary="List received webhooks",
    )
    def list_requests(
        self,
        runtime: NamedDependency[Runtime],
        tenant: NamedDependency[Tenant],
        integration_id: IntegrationId,
        page: PageParam = 1,
        limit: LimitParam = 50,
    ) -> HookRequestPage:
        """The integration's webhook requests, newest first, paginated; credentials in headers are masked.

        ``status``: ``received`` (stored, waiting for a worker), ``processing``, ``processed`` (with
        ``events_created``), ``failed`` (``error`` says why), or ``rejected`` (refused at once: failed
        verification, disabled integration, body too large; its body is not kept).
        """
        items, has_more = hooks.list_requests(runtime, tenant.id, integration_id, page=page, limit=limit)
        return HookRequestPage(hooks=[HookRequest(**item) for item in items], page=page, limit=limit, has_more=has_more)
