"""Events: the platform publishes (``/v1/events``); tenants monitor, retry and cancel deliveries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED
from msgspec import UNSET

from interlink import events as service
from interlink.api import schemas
from interlink.api.errors import problem_responses
from interlink.api.fast_publish import publish_fast_lane, publish_response
from interlink.errors import InvalidInputError
from interlink.manifest import FieldError
from interlink.pipeline import parse_events, publish_async
from interlink.runtime import Runtime
from interlink.store.tenants import Tenant

__all__ = ["EventMonitorController", "PublishController"]

EventId = Annotated[
    str, PathParameter(description="The event's id", examples=[Example(value="evt_01jd3k4m5n6p7q8r9s0t1v2w3y")])
]
PUBLISH_EXAMPLE = {
    "type": "order.created",
    "id": "order-1001-created",
    "data": {"order_id": "o_1001", "total": 4200, "currency": "EUR"},
}
FILTER_EXAMPLE = {
    "integrationId": "integration-id",
    "status": "failed",
    "from": "2025-01-01T00:00:00Z",
    "to": "2025-01-31T23:59:59Z",
    "page": 1,
    "limit": 50,
}


def _aware(value: datetime | Any) -> datetime | None:
    if value is UNSET:
        return None
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class PublishController(Controller):
    """``/v1/events``: the platform's domain events enter here."""

    path = "/v1/events"
    tags = ["events"]

    @post(
        "/",
        operation_id="publishEvents",
        status_code=HTTP_202_ACCEPTED,
        responses=problem_responses(),
        summary="Publish events",
        middleware=[publish_fast_lane],  # the common case answered without this handler's machinery
    )
    async def publish_events(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[schemas.PublishRequest, Body(examples=[Example(value=PUBLISH_EXAMPLE)])],
    ) -> schemas.PublishResponse:
        """Accept one event or a batch; each fans out to every integration that delivers its type.

        Answered once the events and their deliveries are committed: an accepted event is never lost.
        """
        # The runtime and the guard's tenant are read here rather than injected: two dependencies make
        # Litestar resolve them in a task group, a cost as large as this handler's own on the hot route.
        runtime: Runtime = request.app.state.runtime
        tenant: Tenant = request.state.tenant
        results = await publish_async(runtime, tenant.id, parse_events(msgspec.to_builtins(data)))
        return publish_response(results)


class EventMonitorController(Controller):
    """``/v1/integrations/events``: find deliveries, read their logs, retry and cancel them."""

    path = "/v1/integrations/events"
    tags = ["events"]

    @post(
        "/filter",
        operation_id="filterEvents",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        responses=problem_responses(),
        summary="Filter events",
    )
    def filter(
        self,
        runtime: NamedDependency[Runtime],
        tenant: NamedDependency[Tenant],
        data: Annotated[schemas.EventFilterRequest, Body(examples=[Example(value=FILTER_EXAMPLE)])],
    ) -> schemas.EventPage:
        """Events by integration, status (one or a list), type and time range; newest first."""
        errors: list[FieldError] = []
        integration_id = schemas.resolve_twin(
            errors, "/integrationId", data.integrationId, data.integration_id, "integrationId"
        )
        event_type = schemas.resolve_twin(errors, "/eventType", data.eventType, data.event_type, "eventType")
        if errors:
            raise InvalidInputError(errors)
        statuses = [] if data.status is UNSET else [data.status] if isinstance(data.status, str) else data.status
        query = service.EventFilter(
            integration_id=None if integration_id is UNSET else integration_id,
            statuses=statuses,
            event_type=None if event_type is UNSET else event_type,
            start=_aware(data.from_),
            end=_aware(data.to),
            page=data.page,
            limit=data.limit,
        )
        items, has_more = service.filter_events(runtime, tenant.id, query)
        return schemas.EventPage(
            events=[msgspec.convert(i, schemas.EventSummary) for i in items],
            page=data.page,
            limit=data.limit,
            has_more=has_more,
        )

    @get(
        "/{event_id:str}",
        operation_id="getEvent",
        sync_to_thread=True,
        responses=problem_responses(404),
        summary="Get event by ID",
    )
    def get_one(
        self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant], event_id: EventId
    ) -> schemas.EventEnvelope:
        """The event with its communication logs, payload reference, attempts and retries."""
        return schemas.EventEnvelope(
            event=msgspec.convert(service.get_event(runtime, tenant.id, event_id), schemas.EventDetail)
        )

    @get(
        "/{event_id:str}/payload",
        operation_id="getEventPayload",
        sync_to_thread=True,
        responses=problem_responses(404),
        summary="Get an event's payload",
    )
    def payload(
        self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant], event_id: EventId
    ) -> schemas.Payload:
        """The payload the event references, as it was published."""
        return msgspec.convert(service.get_payload(runtime, tenant.id, event_id), schemas.Payload)

    @post(
        "/{event_id:str}/retry",
        operation_id="retryEvent",
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        responses=problem_responses(404, 409),
        summary="Retry event",
    )
    def retry(
        self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant], event_id: EventId
    ) -> schemas.EventEnvelope:
        """A new event linked to this finished one (``retry_of``), enqueued at once."""
        return schemas.EventEnvelope(
            event=msgspec.convert(service.retry_event(runtime, tenant.id, event_id), schemas.EventDetail)
        )

    @post(
        "/{event_id:str}/cancel",
        operation_id="cancelEvent",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        responses=problem_responses(404, 409),
        summary="Cancel event",
    )
    def cancel(
        self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant], event_id: EventId
    ) -> schemas.EventEnvelope:
        """Stop a queued, waiting or stuck event; a worker still holding it cannot undo the cancel."""
        return schemas.EventEnvelope(
            event=msgspec.convert(service.cancel_event(runtime, tenant.id, event_id), schemas.EventDetail)
        )
