"""Request and response bodies (msgspec Structs), named as the seed documents name their fields.

Request bodies accept the camelCase keys the management document shows and their snake_case twins;
responses are snake_case. Examples on the fields feed the OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from interlink.manifest import FieldError

__all__ = [
    "Catalogue",
    "ConnectorManifest",
    "Health",
    "InboundKey",
    "Integration",
    "IntegrationCreate",
    "IntegrationEnvelope",
    "IntegrationList",
    "IntegrationUpdate",
    "Problem",
    "SyncRun",
    "SyncRunEnvelope",
    "SyncRunPage",
    "SyncStats",
    "SyncTriggered",
    "SynchronizationIn",
    "SynchronizationOut",
    "resolve_twin",
]


def resolve_twin(errors: list[FieldError], pointer: str, camel: Any, snake: Any, name: str) -> Any:
    """One value from a camelCase/snake_case pair of fields (``UNSET`` if neither was sent).

    Both sent with different values is an error, appended to ``errors`` at ``pointer``.
    """
    if camel is not UNSET and snake is not UNSET and camel != snake:
        errors.append(FieldError(pointer, "const", f"'{name}' is given twice with different values"))
    return camel if camel is not UNSET else snake


EXAMPLE_ID = "int_01jd3k4m5n6p7q8r9s0t1v2w3x"


class SynchronizationIn(Struct, forbid_unknown_fields=True):
    """One event type the integration handles; send ``eventType`` or ``event_type``."""

    eventType: Annotated[str, Meta(examples=["order.created"])] | UnsetType = UNSET
    event_type: str | UnsetType = UNSET
    enabled: bool = True


class IntegrationCreate(Struct, forbid_unknown_fields=True):
    """The body of ``POST /v1/integrations``, as the management document shows it."""

    service: Annotated[str, Meta(examples=["klaviyo"])] | UnsetType = UNSET
    type: str | UnsetType = UNSET
    """A twin of ``service``, as the integration object carries both."""
    enabled: bool = True
    name: Annotated[str, Meta(min_length=1, max_length=200)] | UnsetType = UNSET
    settings: dict[str, Any] = msgspec.field(default_factory=dict)
    synchronizations: list[SynchronizationIn] = msgspec.field(default_factory=list)
    sync_interval: Annotated[int, Meta(ge=60)] | UnsetType = UNSET
    syncInterval: Annotated[int, Meta(ge=60)] | UnsetType = UNSET
    retry_schedule: Annotated[list[Annotated[int, Meta(ge=0, le=86_400)]], Meta(max_length=20)] | UnsetType = UNSET
    retrySchedule: Annotated[list[Annotated[int, Meta(ge=0, le=86_400)]], Meta(max_length=20)] | UnsetType = UNSET


class IntegrationUpdate(Struct, forbid_unknown_fields=True):
    """The body of ``PUT /v1/integrations/{id}``: what is omitted stays; settings merge key by key."""

    enabled: bool | UnsetType = UNSET
    name: Annotated[str, Meta(min_length=1, max_length=200)] | UnsetType = UNSET
    settings: dict[str, Any] | UnsetType = UNSET
    synchronizations: list[SynchronizationIn] | UnsetType = UNSET
    service: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    sync_interval: Annotated[int, Meta(ge=60)] | UnsetType = UNSET
    syncInterval: Annotated[int, Meta(ge=60)] | UnsetType = UNSET
    retry_schedule: Annotated[list[Annotated[int, Meta(ge=0, le=86_400)]], Meta(max_length=20)] | UnsetType = UNSET
    retrySchedule: Annotated[list[Annotated[int, Meta(ge=0, le=86_400)]], Meta(max_length=20)] | UnsetType = UNSET


class SynchronizationOut(Struct):
    event_type: Annotated[str, Meta(examples=["order.created"])]
    enabled: bool


class SyncStats(Struct):
    """Figures over the integration's events, both directions."""

    events_last_24h: Annotated[int, Meta(examples=[4821])]
    events_total: Annotated[int, Meta(examples=[1204739])]
    earliest_event_at: Annotated[datetime, Meta(examples=["2023-08-01T00:00:00Z"])] | None


class Integration(Struct, omit_defaults=True):
    """An integration; ``type`` and ``service`` carry the same value. Secrets read as a fixed mask."""

    id: Annotated[str, Meta(examples=[EXAMPLE_ID])]
    type: Annotated[str, Meta(examples=["klaviyo"])]
    service: Annotated[str, Meta(examples=["klaviyo"])]
    name: Annotated[str, Meta(examples=["Klaviyo Marketing"])]
    enabled: bool
    status: Annotated[str, Meta(examples=["connected"], pattern="^(connected|error|syncing|disconnected)$")]
    last_synced_at: Annotated[datetime, Meta(examples=["2024-03-15T13:00:00Z"])] | None
    error_message: Annotated[str, Meta(examples=["Invalid API key — update settings.apiKey"])] | None
    settings: Annotated[dict[str, Any], Meta(examples=[{"apiKey": "********"}])]
    synchronizations: list[SynchronizationOut]
    sync_interval: int | None
    retry_schedule: Annotated[list[int], Meta(examples=[[0, 5, 300, 1800, 7200, 18000, 36000, 36000]])]
    has_inbound_key: bool
    created_at: datetime
    updated_at: datetime
    sync_stats: SyncStats | UnsetType = UNSET
    signing_secret: Annotated[str, Meta(examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])] | UnsetType = UNSET
    """Only in the answer to the create of a ``custom`` integration: the one time it is shown."""


class IntegrationEnvelope(Struct):
    integration: Integration


class IntegrationList(Struct):
    integrations: list[Integration]
    page: Annotated[int, Meta(examples=[1])]
    limit: Annotated[int, Meta(examples=[50])]
    has_more: bool


class SyncEventOut(Struct):
    event_type: Annotated[str, Meta(examples=["invoice.paid"])]
    direction: Annotated[str, Meta(examples=["inbound"])]
    description: str


class ConnectorManifest(Struct, omit_defaults=True):
    """A connector's manifest as the catalogue shows it, with its settings schema."""

    service: Annotated[str, Meta(examples=["klaviyo"])]
    name: Annotated[str, Meta(examples=["Klaviyo"])]
    version: Annotated[str, Meta(examples=["1.0.0"])]
    description: str
    categories: list[str]
    capabilities: Annotated[list[str], Meta(examples=[["check", "deliver", "sync", "handle_webhook"]])]
    settings: Annotated[
        dict[str, Any],
        Meta(
            examples=[
                {
                    "type": "object",
                    "properties": {"apiKey": {"type": "string", "writeOnly": True}},
                    "required": ["apiKey"],
                }
            ]
        ),
    ]
    sync_events: list[SyncEventOut]
    accepts_any_event: bool = False
    default_sync_interval: int | None = None
    docs_url: str | None = None
    distribution: str | None = None


class Catalogue(Struct):
    available: list[ConnectorManifest]


class InboundKey(Struct):
    """A new inbound API key: shown once, stored hashed."""

    integration_id: Annotated[str, Meta(examples=[EXAMPLE_ID])]
    inbound_key: Annotated[str, Meta(examples=["ik_3q2Zp9..."])]


class Health(Struct):
    status: Annotated[str, Meta(examples=["ok"])]
    version: Annotated[str, Meta(examples=["0.1.0"])]
    database: Annotated[str, Meta(examples=["sqlite"])]


class ProblemFieldError(Struct):
    pointer: Annotated[str, Meta(examples=["/settings/apiKey"])]
    rule: Annotated[str, Meta(examples=["required"])]
    message: Annotated[str, Meta(examples=["'apiKey' is required"])]


class Problem(Struct, omit_defaults=True):
    """An error, as RFC 9457 problem details; validation errors list each field at fault."""

    type: Annotated[str, Meta(examples=["about:blank"])]
    title: Annotated[str, Meta(examples=["Unprocessable Content"])]
    status: Annotated[int, Meta(examples=[422])]
    detail: Annotated[str, Meta(examples=["the request breaks one or more rules"])]
    errors: list[ProblemFieldError] | UnsetType = UNSET


# -- Events: publish and monitoring --


class EventItem(Struct, forbid_unknown_fields=True):
    """One domain event the platform publishes."""

    type: Annotated[str, Meta(examples=["order.created"])] | UnsetType = UNSET
    data: Annotated[Any, Meta(examples=[{"order_id": "o_1001", "total": 4200, "currency": "EUR"}])] = UNSET
    id: Annotated[str, Meta(examples=["order-1001-created"])] | UnsetType = UNSET
    """The platform's own id: a second publish with the same id is recognised and dropped."""
    occurred_at: Annotated[str, Meta(examples=["2025-01-31T12:00:00Z"])] | UnsetType = UNSET


class PublishRequest(EventItem, forbid_unknown_fields=True):
    """One event (``type``, ``data``, ...) or a batch: ``{"events": [...]}`` with up to 1,000 events."""

    events: list[EventItem] | UnsetType = UNSET


class PublishedEvent(Struct):
    id: Annotated[str, Meta(examples=["pub_01jd3k4m5n6p7q8r9s0t1v2w3x"])]
    """The published event's id; every integration event it fanned out to references it as ``payload_ref``."""
    type: Annotated[str, Meta(examples=["order.created"])]
    external_id: str | None
    duplicate: bool
    deliveries: Annotated[int, Meta(examples=[2])]
    delivery_ids: Annotated[list[str], Meta(examples=[["evt_01jd3k4m5n6p7q8r9s0t1v2w3y"]])]


class PublishResponse(Struct):
    events: list[PublishedEvent]


class EventFilterRequest(Struct, forbid_unknown_fields=True):
    """The seed's filter request; snake_case twins (``integration_id``, ``event_type``) are accepted."""

    integrationId: Annotated[str, Meta(examples=["int_01jd3k4m5n6p7q8r9s0t1v2w3x"])] | UnsetType = UNSET
    integration_id: str | UnsetType = UNSET
    status: Annotated[str | list[str], Meta(examples=["failed"])] | UnsetType = UNSET
    eventType: Annotated[str, Meta(examples=["order.created"])] | UnsetType = UNSET
    event_type: str | UnsetType = UNSET
    from_: Annotated[datetime, Meta(examples=["2025-01-01T00:00:00Z"])] | UnsetType = msgspec.field(
        default=UNSET, name="from"
    )
    to: Annotated[datetime, Meta(examples=["2025-01-31T23:59:59Z"])] | UnsetType = UNSET
    page: Annotated[int, Meta(ge=1, le=1_000_000)] = 1
    limit: Annotated[int, Meta(ge=1, le=500)] = 50


class RequestLog(Struct):
    method: str
    url: str
    headers: dict[str, str]
    body: str
    body_size: int


class ResponseLog(Struct):
    status_code: Annotated[int, Meta(examples=[200])]
    headers: dict[str, str] | None
    body: str | None
    body_size: int | None


class CommunicationLog(Struct):
    """One HTTP exchange of one attempt; secrets redacted, bodies truncated (sizes are the originals)."""

    attempt: Annotated[int, Meta(examples=[1])]
    started_at: datetime
    duration_ms: float
    request: RequestLog
    response: ResponseLog | None
    error: str | None


class EventSummary(Struct):
    id: Annotated[str, Meta(examples=["evt_01jd3k4m5n6p7q8r9s0t1v2w3y"])]
    integration_id: Annotated[str, Meta(examples=[EXAMPLE_ID])]
    event_type: Annotated[str, Meta(examples=["order.created"])]
    direction: Annotated[str, Meta(examples=["outbound"])]
    status: Annotated[str, Meta(examples=["failed"])]
    attempts: int
    next_attempt_at: datetime | None
    error: Annotated[str, Meta(examples=["HTTP 500 from example.com"])] | None
    retry_of: str | None
    payload_ref: Annotated[str, Meta(examples=["pub_01jd3k4m5n6p7q8r9s0t1v2w3x"])]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class EventDetail(EventSummary):
    retries: list[str]
    communication_logs: list[CommunicationLog]


class EventPage(Struct):
    events: list[EventSummary]
    page: Annotated[int, Meta(examples=[1])]
    limit: Annotated[int, Meta(examples=[50])]
    has_more: bool


class EventEnvelope(Struct):
    event: EventDetail


class Payload(Struct):
    payload_ref: Annotated[str, Meta(examples=["pub_01jd3k4m5n6p7q8r9s0t1v2w3x"])]
    event_type: str
    external_id: str | None
    occurred_at: datetime
    size_bytes: int
    data: Annotated[Any, Meta(examples=[{"order_id": "o_1001"}])]


class SigningSecret(Struct):
    """A new signing secret: shown once, stored encrypted; verify deliveries with it."""

    integration_id: Annotated[str, Meta(examples=[EXAMPLE_ID])]
    signing_secret: Annotated[str, Meta(examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])]


# -- Syncs --

EXAMPLE_SYNC_ID = "sync_01hx4j7k9m2n3p5q6r8s0t1v2w"


class SyncTriggered(Struct):
    """The answer to a sync trigger: the run's id, new or the one already queued or running."""

    status: Annotated[str, Meta(examples=["ok"])]
    sync_id: Annotated[str, Meta(examples=[EXAMPLE_SYNC_ID])]


class SyncRun(Struct):
    """One sync of an integration: ``queued``, ``running``, then ``succeeded``, ``failed`` or ``cancelled``."""

    id: Annotated[str, Meta(examples=[EXAMPLE_SYNC_ID])]
    integration_id: Annotated[str, Meta(examples=[EXAMPLE_ID])]
    status: Annotated[str, Meta(examples=["succeeded"])]
    trigger: Annotated[str, Meta(examples=["manual"])]
    """``manual`` (the API) or ``schedule``."""
    records_read: Annotated[int, Meta(examples=[1250])]
    error: Annotated[str, Meta(examples=["Invalid API key — update settings.apiKey"])] | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class SyncRunEnvelope(Struct):
    sync: SyncRun


class SyncRunPage(Struct):
    syncs: list[SyncRun]
    page: Annotated[int, Meta(examples=[1])]
    limit: Annotated[int, Meta(examples=[50])]
    has_more: bool
