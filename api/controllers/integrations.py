"""Integration configuration: the catalogue, and create/read/update/delete of a tenant's integrations."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import UNSET

from interlink import integrations as service
from interlink.api import schemas
from interlink.api.errors import problem_responses
from interlink.errors import InvalidInputError
from interlink.manifest import FieldError
from interlink.runtime import Runtime
from interlink.store.integrations import Synchronization
from interlink.store.tenants import Tenant

__all__ = ["IntegrationController"]

Status = Literal["connected", "error", "syncing", "disconnected"]
IntegrationId = Annotated[
    str, PathParameter(description="The integration's id", examples=[Example(value=schemas.EXAMPLE_ID)])
]
PageParam = Annotated[int, QueryParameter(ge=1, le=100_000, description="Page number, from 1")]
LimitParam = Annotated[int, QueryParameter(ge=1, le=500, description="Items per page, 1 to 500")]

CREATE_EXAMPLE = {
    "service": "klaviyo",
    "enabled": True,
    "name": "Klaviyo Marketing",
    "settings": {"apiKey": "pk_xxx..."},
    "synchronizations": [
        {"eventType": "order.created", "enabled": True},
        {"eventType": "order.updated", "enabled": True},
    ],
}
UPDATE_EXAMPLE = {"enabled": False, "settings": {"apiKey": "pk_new..."}}


def _synchronizations(errors: list[FieldError], items: list[schemas.SynchronizationIn]) -> list[Synchronization]:
    result = []
    for i, item in enumerate(items):
        pointer = f"/synchronizations/{i}/eventType"
        event_type = schemas.resolve_twin(errors, pointer, item.eventType, item.event_type, "eventType")
        if event_type is UNSET:
            errors.append(FieldError(pointer, "required", "'eventType' is required"))
            continue
        result.append(Synchronization(event_type=event_type, enabled=item.enabled))
    return result


def _view(runtime: Runtime, integration: Any, *, with_stats: bool = False) -> schemas.Integration:
    return msgspec.convert(service.public_view(runtime, integration, with_stats=with_stats), schemas.Integration)


def _page(runtime: Runtime, items: list[Any], page: int, limit: int) -> schemas.IntegrationList:
    return schemas.IntegrationList(
        integrations=[_view(runtime, i) for i in items[:limit]],
        page=page,
        limit=limit,
        has_more=len(items) > limit,
    )


class IntegrationController(Controller):
    """``/v1/integrations``: what a tenant has connected, and the catalogue of what it can connect."""

    path = "/v1/integrations"
    tags = ["integrations"]

    @get(
        "/available",
        operation_id="listAvailableIntegrations",
        responses=problem_responses(),
        sync_to_thread=False,
        summary="List available integrations",
    )
    def available(self, runtime: NamedDependency[Runtime]) -> schemas.Catalogue:
        """The catalogue of connector manifests, with settings schemas and sync events."""
        items = []
        for registered in sorted(runtime.registry.connectors.values(), key=lambda r: r.service):
            item = msgspec.convert(dict(registered.manifest.raw), schemas.ConnectorManifest, strict=False)
            items.append(msgspec.structs.replace(item, distribution=registered.distribution))
        return schemas.Catalogue(available=items)

    @get(
        "/",
        operation_id="listIntegrations",
        responses=problem_responses(),
        sync_to_thread=True,
        summary="Get all integrations",
    )
    def list_all(
        self,
        runtime: NamedDependency[Runtime],
        tenant: NamedDependency[Tenant],
        type_: Annotated[str | None, QueryParameter(name="type", description="Only this service")] = None,
        status: Annotated[Status | None, QueryParameter(description="Only this status")] = None,
        page: PageParam = 1,
        limit: LimitParam = 50,
    ) -> schemas.IntegrationList:
        """The tenant's integrations, oldest first, paginated; filter by ``type`` and ``status``."""
        items = service.list_integrations(
            runtime, tenant.id, service=type_, status=status, limit=limit + 1, offset=(page - 1) * limit
        )
        return _page(runtime, items, page, limit)

    @get(
        "/search",
        operation_id="searchIntegrations",
        responses=problem_responses(),
        sync_to_thread=True,
        summary="Search integrations",
    )
    def search(
        self,
        runtime: NamedDependency[Runtime],
        tenant: NamedDependency[Tenant],
        q: Annotated[str, QueryParameter(description="Text found in the name, service or id", max_length=200)] = "",
        page: PageParam = 1,
        limit: LimitParam = 50,
    ) -> schemas.IntegrationList:
        """Integrations whose name, service or id contains ``q`` (case-insensitive)."""
        items = service.list_integrations(runtime, tenant.id, query=q, limit=limit + 1, offset=(page - 1) * limit)
        return _page(runtime, items, page, limit)

    @post(
        "/",
        operation_id="createIntegration",
        responses=problem_responses(),
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Create integration",
    )
    def create(
        self,
        runtime: NamedDependency[Runtime],
        tenant: NamedDependency[Tenant],
        data: Annotated[schemas.IntegrationCreate, Body(examples=[Example(value=CREATE_EXAMPLE)])],
    ) -> schemas.IntegrationEnvelope:
        """Validate the settings against the connector's schema, encrypt its secrets, and store it."""
        errors: list[FieldError] = []
        service_id = schemas.resolve_twin(errors, "/service", data.service, data.type, "service")
        interval = schemas.resolve_twin(
            errors, "/sync_interval", data.syncInterval, data.sync_interval, "sync_interval"
        )
        schedule = schemas.resolve_twin(
            errors, "/retry_schedule", data.retrySchedule, data.retry_schedule, "retry_schedule"
        )
        syncs = _synchronizations(errors, data.synchronizations)
        if service_id is UNSET:
            errors.append(FieldError("/service", "required", "'service' is required"))
        if errors:
            raise InvalidInputError(errors)
        integration, signing_secret = service.create_integration(
            runtime,
            tenant.id,
            service.NewIntegration(
                service=service_id,
                name=None if data.name is UNSET else data.name,
                enabled=data.enabled,
                settings=data.settings,
                synchronizations=syncs,
                sync_interval=None if interval is UNSET else interval,
                retry_schedule=None if schedule is UNSET else schedule,
            ),
        )
        view = _view(runtime, integration)
        if signing_secret is not None:
            view = msgspec.structs.replace(view, signing_secret=signing_secret)
        return schemas.IntegrationEnvelope(integration=view)

    @get(
        "/{integration_id:str}",
        operation_id="getIntegration",
        responses=problem_responses(404),
        sync_to_thread=True,
        summary="Get specific integration",
    )
    def get_one(
        self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant], integration_id: IntegrationId
    ) -> schemas.IntegrationEnvelope:
        """One integration with its ``sync_stats``."""
        integration = service.get_integration(runtime, tenant.id, integration_id)
        return schemas.IntegrationEnvelope(integration=_view(runtime, integration, with_stats=True))

    @put(
        "/{integration_id:str}",
        operation_id="updateIntegration",
        responses=problem_responses(404),
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        summary="Update integration",
    )
    def update(
        self,
        runtime: NamedDependency[Runtime],
        tenant: NamedDependency[Tenant],
        integration_id: IntegrationId,
        data: Annotated[schemas.IntegrationUpdate, Body(examples=[Example(value=UPDATE_EXAMPLE)])],
    ) -> schemas.IntegrationEnvelope:
        """Merge the changes and revalidate; a secret sent as the mask, or omitted, keeps its value."""
        errors: list[FieldError] = []
        service_id = schemas.resolve_twin(errors, "/service", data.service, data.type, "service")
        interval = schemas.resolve_twin(
            errors, "/sync_interval", data.syncInterval, data.sync_interval, "sync_interval"
        )
        schedule = schemas.resolve_twin(
            errors, "/retry_schedule", data.retrySchedule, data.retry_schedule, "retry_schedule"
        )
        syncs = None if data.synchronizations is UNSET else _synchronizations(errors, data.synchronizations)
        if errors:
            raise InvalidInputError(errors)
        integration = service.update_integration(
            runtime,
            tenant.id,
            integration_id,
            service.IntegrationChanges(
                name=None if data.name is UNSET else data.name,
                enabled=None if data.enabled is UNSET else data.enabled,
                settings=None if data.settings is UNSET else data.settings,
                synchronizations=syncs,
                sync_interval=None if interval is UNSET else interval,
                retry_schedule=None if schedule is UNSET else schedule,
                service=None if service_id is UNSET else service_id,
            ),
        )
        return schemas.IntegrationEnvelope(integration=_view(runtime, integration, with_stats=True))

    @delete(
        "/{integration_id:str}",
        operation_id="deleteIntegration",
        responses=problem_responses(404),
        status_code=HTTP_204_NO_CONTENT,
        sync_to_thread=True,
        summary="Delete integration",
    )
    def remove(
        self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant], integration_id: IntegrationId
    ) -> None:
        """Delete the integration and its configuration."""
        service.delete_integration(runtime, tenant.id, integration_id)

    @post(
        "/{integration_id:str}/regenerate-key",
        operation_id="regenerateIntegrationKey",
        responses=problem_responses(404, 409),
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        summary="Regenerate API key",
    )
    def regenerate_key(
        self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant], integration_id: IntegrationId
    ) -> schemas.InboundKey:
        """For custom integrations: a new inbound API key, shown once; the previous key is invalid at once."""
        key = service.regenerate_inbound_key(runtime, tenant.id, integration_id)
        return schemas.InboundKey(integration_id=integration_id, inbound_key=key)

    @post(
        "/{integration_id:str}/rotate-signing-secret",
        operation_id="rotateSigningSecret",
        responses=problem_responses(404, 409),
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        summary="Rotate the signing secret",
    )
    def rotate_signing_secret(
        self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant], integration_id: IntegrationId
    ) -> schemas.SigningSecret:
        """For custom integrations: a new secret for the deliveries' signatures, shown once; the old one stops."""
        secret = service.rotate_signing_secret(runtime, tenant.id, integration_id)
        return schemas.SigningSecret(integration_id=integration_id, signing_secret=secret)
