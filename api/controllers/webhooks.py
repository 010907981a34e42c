"""Tenant notification webhooks: register, list, read, delete endpoints, and rotate their signing secret.

The bodies live here rather than in ``schemas.py``: they belong to this resource alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import UNSET, Meta, Struct, UnsetType

from interlink import notifications as service
from interlink.api import schemas
from interlink.api.errors import problem_responses
from interlink.errors import InvalidInputError
from interlink.manifest import FieldError
from interlink.runtime import Runtime
from interlink.store.tenants import Tenant

__all__ = ["WebhookController"]

EXAMPLE_WEBHOOK_ID = "wh_01jd3k4m5n6p7q8r9s0t1v2w3x"
EXAMPLE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - a documentation example
EXAMPLE_URL = "https://example.com/interlink/notifications"
CREATE_EXAMPLE = {"url": EXAMPLE_URL, "eventTypes": ["integration.error", "integration.recovered"]}

WebhookId = Annotated[
    str, PathParameter(description="The webhook endpoint's id", examples=[Example(value=EXAMPLE_WEBHOOK_ID)])
]


class WebhookCreate(Struct, forbid_unknown_fields=True):
    """The body of ``POST /v1/webhooks``; ``eventTypes`` (or ``event_types``) omitted means all five."""

    url: Annotated[str, Meta(examples=[EXAMPLE_URL])] | UnsetType = UNSET
    eventTypes: Annotated[list[str], Meta(examples=[list(service.EVENT_TYPES)])] | UnsetType = UNSET
    event_types: list[str] | UnsetType = UNSET


class Webhook(Struct, omit_defaults=True):
    """A notification endpoint: where Interlink POSTs signed notifications of the event types listed."""

    id: Annotated[str, Meta(examples=[EXAMPLE_WEBHOOK_ID])]
    url: Annotated[str, Meta(examples=[EXAMPLE_URL])]
    event_types: Annotated[list[str], Meta(examples=[["integration.error", "integration.recovered"]])]
    enabled: bool
    created_at: datetime
    signing_secret: Annotated[str, Meta(examples=[EXAMPLE_SECRET])] | UnsetType = UNSET
    """Only in the answer to the create: the one time it is shown."""


class WebhookEnvelope(Struct):
    webhook: Webhook


class WebhookList(Struct):
    webhooks: list[Webhook]


class WebhookSecret(Struct):
    """A new signing secret: shown once, stored encrypted; the previous one stops at once."""

    webhook_id: Annotated[str, Meta(examples=[EXAMPLE_WEBHOOK_ID])]
    signing_secret: Annotated[str, Meta(examples=[EXAMPLE_SECRET])]


def _view(endpoint: service.Endpoint, secret: str | None = None) -> Webhook:
    return Webhook(
        id=endpoint.id,
        url=endpoint.url,
        event_types=endpoint.event_types,
        enabled=endpoint.enabled,
        created_at=endpoint.created_at,
        signing_secret=UNSET if secret is None else secret,
    )


class WebhookController(Controller):
    """``/v1/webhooks``: where the tenant is told of integration errors, recoveries, syncs and failed events."""

    path = "/v1/webhooks"
    tags = ["webhooks"]

    @post(
        "/",
        operation_id="createWebhook",
        responses=problem_responses(409),
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Register a notification webhook",
    )
    def create(
        self,
        runtime: NamedDependency[Runtime],
        tenant: NamedDependency[Tenant],
        data: Annotated[WebhookCreate, Body(examples=[Example(value=CREATE_EXAMPLE)])],
    ) -> WebhookEnvelope:
        """Register an endpoint for some of ``integration.error``, ``integration.recovered``, ``sync.succeeded``,
        ``sync.failed``, ``event.failed``; the answer carries its ``signing_secret``, shown only this once."""
        errors: list[FieldError] = []
        event_types = schemas.resolve_twin(errors, "/eventTypes", data.eventTypes, data.event_types, "eventTypes")
        if data.url is UNSET:
            errors.append(FieldError("/url", "required", "'url' is required, e.g. \"https://example.com/hooks\""))
        if errors:
            raise InvalidInputError(errors)
        endpoint, secret = service.register_endpoint(
            runtime, tenant.id, str(data.url), None if event_types is UNSET else event_types
        )
        return WebhookEnvelope(webhook=_view(endpoint, secret))

    @get(
        "/",
        operation_id="listWebhooks",
        responses=problem_responses(),
        sync_to_thread=True,
        summary="List notification webhooks",
    )
    def list_all(self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant]) -> WebhookList:
        """The tenant's notification endpoints, oldest first (without their secrets)."""
        return WebhookList(webhooks=[_view(e) for e in service.list_endpoints(runtime, tenant.id)])

    @get(
        "/{webhook_id:str}",
        operation_id="getWebhook",
        responses=problem_responses(404),
        sync_to_thread=True,
        summary="Get a notification webhook",
    )
    def get_one(
        self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant], webhook_id: WebhookId
    ) -> WebhookEnvelope:
        """One endpoint; its deliveries are in the events filter under its id (``integrationId``)."""
        return WebhookEnvelope(webhook=_view(service.get_endpoint(runtime, tenant.id, webhook_id)))

    @delete(
        "/{webhook_id:str}",
        operation_id="deleteWebhook",
        responses=problem_responses(404),
        status_code=HTTP_204_NO_CONTENT,
        sync_to_thread=True,
        summary="Delete a notification webhook",
    )
    def remove(self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant], webhook_id: WebhookId) -> None:
        """Delete the endpoint, its deliveries and their logs; nothing more is sent to it."""
        service.delete_endpoint(runtime, tenant.id, webhook_id)

    @post(
        "/{webhook_id:str}/rotate-signing-secret",
        operation_id="rotateWebhookSigningSecret",
        responses=problem_responses(404),
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        summary="Rotate a notification webhook's signing secret",
    )
    def rotate_signing_secret(
        self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant], webhook_id: WebhookId
    ) -> WebhookSecret:
        """A new signing secret, shown once; the old one stops at once."""
        secret = service.rotate_endpoint_secret(runtime, tenant.id, webhook_id)
        return WebhookSecret(webhook_id=webhook_id, signing_secret=secret)
