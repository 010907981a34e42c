"""Request and response bodies (msgspec Structs), named as the seed documents name their fields.

Request bodies accept the camelCase keys the management document shows and their snake_case twins;
responses are snake_case. Examples on the fields feed the OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

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
    "SyncStats",
    "SynchronizationIn",
    "SynchronizationOut",
]

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
    has_inbound_key: bool
    created_at: datetime
    updated_at: datetime
    sync_stats: SyncStats | UnsetType = UNSET


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
