"""Integration configuration: create, read, update, delete, with settings validated and secrets sealed.

Used by the API and by platforms that embed the library; every function is scoped by tenant.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from interlink.errors import ConflictError, InvalidInputError, NotFoundError
from interlink.ids import new_id
from interlink.manifest import FieldError, Manifest
from interlink.pipeline.retries import DEFAULT_SCHEDULE
from interlink.runtime import Runtime
from interlink.secrets import mask_settings, merge_settings
from interlink.stats import integration_stats
from interlink.store import integrations as rows
from interlink.store.integrations import Integration, Synchronization
from interlink.store.tenants import hash_token

__all__ = [
    "IntegrationChanges",
    "NewIntegration",
    "create_integration",
    "delete_integration",
    "get_integration",
    "list_integrations",
    "public_view",
    "regenerate_inbound_key",
    "rotate_signing_secret",
    "sync_stats",
    "update_integration",
]

MAX_ATTEMPTS = 20
INBOUND_KEY_SERVICES = frozenset({"custom"})
SIGNING_SECRET_SERVICES = frozenset({"custom"})
"""Services whose deliveries are signed with a secret Interlink generates per integration."""


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class NewIntegration:
    service: str
    name: str | None = None
    enabled: bool = True
    settings: Mapping[str, Any] | None = None
    synchronizations: list[Synchronization] | None = None
    sync_interval: int | None = None
    retry_schedule: Sequence[int] | None = None


@dataclass(frozen=True)
class IntegrationChanges:
    """A PUT: ``None`` leaves a field as it is; settings merge key by key."""

    name: str | None = None
    enabled: bool | None = None
    settings: Mapping[str, Any] | None = None
    synchronizations: list[Synchronization] | None = None
    sync_interval: int | None = None
    retry_schedule: Sequence[int] | None = None
    """Seconds before each attempt; an empty list goes back to the default schedule."""
    service: str | None = None


def _manifest(runtime: Runtime, service: str, pointer: str = "/service") -> Manifest:
    registered = runtime.registry.get(service)
    if registered is None:
        known = ", ".join(sorted(runtime.registry.connectors)) or "none"
        raise InvalidInputError([FieldError(pointer, "enum", f"unknown service '{service}'; available: {known}")])
    return registered.manifest


def _check_synchronizations(manifest: Manifest, syncs: list[Synchronization]) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    accepted = ", ".join(e.event_type for e in manifest.sync_events)
    for i, sync in enumerate(syncs):
        pointer = f"/synchronizations/{i}/eventType"
        if not manifest.accepts_event(sync.event_type):
            errors.append(
                FieldError(
                    pointer,
                    "enum",
                    f"{manifest.service} does not accept event type '{sync.event_type}'; accepted: {accepted}",
                )
            )
        if sync.event_type in seen:
            errors.append(FieldError(pointer, "uniqueItems", f"event type '{sync.event_type}' is listed twice"))
        seen.add(sync.event_type)
    return errors


def _check_schedule(schedule: Sequence[int] | None) -> list[FieldError]:
    if schedule is None or len(schedule) == 0:
        return []
    if schedule[0] != 0:
        return [FieldError("/retry_schedule/0", "const", "the first attempt is immediate: start the schedule with 0")]
    if len(schedule) > MAX_ATTEMPTS:
        return [FieldError("/retry_schedule", "maxItems", f"'retry_schedule' allows at most {MAX_ATTEMPTS} attempts")]
    return [
        FieldError(f"/retry_schedule/{i}", "maximum", "each delay must be between 0 and 86400 seconds")
        for i, delay in enumerate(schedule)
        if not 0 <= delay <= 86_400
    ]


def _check_interval(interval: int | None) -> list[FieldError]:
    if interval is not None and interval < 60:
        return [FieldError("/sync_interval", "minimum", "'sync_interval' must be at least 60 seconds")]
    return []


def create_integration(runtime: Runtime, tenant_id: str, new: NewIntegration) -> tuple[Integration, str | None]:
    """Validate and store a new integration; raise :class:`InvalidInputError` with every problem.

    Returns the integration and, for services that sign their deliveries, its new signing secret: the
    only time it is shown.
    """
    manifest = _manifest(runtime, new.service)
    settings = merge_settings({}, new.settings or {})  # a mask copied from a response is not a value
    syncs = list(new.synchronizations or [])
    errors = manifest.validate_settings(settings) + _check_synchronizations(manifest, syncs)
    errors += _check_interval(new.sync_interval) + _check_schedule(new.retry_schedule)
    if errors:
        raise InvalidInputError(errors)
    now = datetime.now(UTC)
    signing_secret = new_signing_secret() if manifest.service in SIGNING_SECRET_SERVICES else None
    integration = Integration(
        id=new_id("int"),
        tenant_id=tenant_id,
        service=manifest.service,
        name=new.name or manifest.name,
        enabled=new.enabled,
        settings=runtime.keyring.seal(settings, manifest.secret_keys),
        status="connected",
        created_at=now,
        updated_at=now,
        synchronizations=syncs,
        sync_interval=new.sync_interval,
        retry_schedule=list(new.retry_schedule) if new.retry_schedule else None,
        signing_secret=runtime.keyring.encrypt(signing_secret) if signing_secret else None,
    )
    with runtime.engine.begin() as conn:
        rows.insert_integration(conn, integration)
    return integration, signing_secret


def get_integration(runtime: Runtime, tenant_id: str, integration_id: str) -> Integration:
    with runtime.engine.connect() as conn:
        integration = rows.get_integration(conn, tenant_id, integration_id)
    if integration is None:
        raise NotFoundError(f"integration '{integration_id}' not found")
    return integration


def list_integrations(
    runtime: Runtime,
    tenant_id: str,
    *,
    service: str | None = None,
    status: str | None = None,
    query: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Integration]:
    with runtime.engine.connect() as conn:
        return rows.list_integrations(
            conn, tenant_id, service=service, status=status, query=query, limit=limit, offset=offset
        )


def update_integration(
    runtime: Runtime, tenant_id: str, integration_id: str, changes: IntegrationChanges
) -> Integration:
    """Apply a PUT: merge settings (a masked or omitted secret keeps its value) and revalidate all."""
    with runtime.engine.begin() as conn:
        current = rows.get_integration(conn, tenant_id, integration_id)
        if current is None:
            raise NotFoundError(f"integration '{integration_id}' not found")
        manifest = _manifest(runtime, current.service)
        errors: list[FieldError] = []
        if changes.service is not None and changes.service != current.service:
            errors.append(FieldError("/service", "const", "'service' cannot be changed; create a new integration"))
        settings = runtime.keyring.open(current.settings, manifest.secret_keys)
        if changes.settings is not None:
            settings = merge_settings(settings, changes.settings)
        syncs = current.synchronizations if changes.synchronizations is None else changes.synchronizations
        errors += manifest.validate_settings(settings) + _check_synchronizations(manifest, syncs)
        errors += _check_interval(changes.sync_interval) + _check_schedule(changes.retry_schedule)
        if errors:
            raise InvalidInputError(errors)
        current.settings = runtime.keyring.seal(settings, manifest.secret_keys)
        current.synchronizations = list(syncs)
        current.name = changes.name if changes.name is not None else current.name
        current.enabled = changes.enabled if changes.enabled is not None else current.enabled
        if changes.sync_interval is not None:
            current.sync_interval = changes.sync_interval
        if changes.retry_schedule is not None:
            current.retry_schedule = list(changes.retry_schedule) or None
        current.updated_at = datetime.now(UTC)
        rows.update_integration(conn, current)
    return current


def delete_integration(runtime: Runtime, tenant_id: str, integration_id: str) -> None:
    with runtime.engine.begin() as conn:
        if not rows.delete_integration(conn, tenant_id, integration_id):
            raise NotFoundError(f"integration '{integration_id}' not found")


def _change_one(
    runtime: Runtime,
    tenant_id: str,
    integration_id: str,
    services: frozenset[str],
    refusal: str,
    change: Callable[[Integration], None],
    kind: str = rows.INTEGRATION,
) -> None:
    """Apply ``change`` to one integration of a service in ``services``; 404 if absent, 409 otherwise."""
    with runtime.engine.begin() as conn:
        current = rows.get_integration(conn, tenant_id, integration_id, kind=kind)
        if current is None:
            noun = "integration" if kind == rows.INTEGRATION else "webhook"
            raise NotFoundError(f"{noun} '{integration_id}' not found")
        if current.service not in services:
            raise ConflictError(refusal.format(id=integration_id, service=current.service))
        change(current)
        current.updated_at = datetime.now(UTC)
        rows.update_integration(conn, current)


def regenerate_inbound_key(runtime: Runtime, tenant_id: str, integration_id: str) -> str:
    """A new inbound key for a ``custom`` integration, returned once; the old one stops working at once."""
    key = "ik_" + secrets.token_urlsafe(32)

    def store(integration: Integration) -> None:
        integration.inbound_key_hash = hash_token(key)

    _change_one(
        runtime,
        tenant_id,
        integration_id,
        INBOUND_KEY_SERVICES,
        "only custom integrations have an inbound API key; '{id}' is {service}",
        store,
    )
    return key


def rotate_signing_secret(
    runtime: Runtime, tenant_id: str, integration_id: str, *, kind: str = rows.INTEGRATION
) -> str:
    """A new signing secret for an integration whose deliveries are signed, shown once; the old one stops.

    ``kind`` :data:`~interlink.store.integrations.NOTIFICATION` rotates a notification endpoint's secret.
    """
    secret = new_signing_secret()

    def store(integration: Integration) -> None:
        integration.signing_secret = runtime.keyring.encrypt(secret)

    _change_one(
        runtime,
        tenant_id,
        integration_id,
        SIGNING_SECRET_SERVICES,
        "{service} deliveries are not signed by Interlink; nothing to rotate",
        store,
        kind,
    )
    return secret


def public_view(runtime: Runtime, integration: Integration, *, with_stats: bool = False) -> dict[str, Any]:
    """The integration as the API shows it: secrets masked, status as the tenant sees it."""
    registered = runtime.registry.get(integration.service)
    secret_keys = registered.manifest.secret_keys if registered else frozenset(integration.settings)
    view: dict[str, Any] = {
        "id": integration.id,
        "type": integration.service,
        "service": integration.service,
        "name": integration.name,
        "enabled": integration.enabled,
        "status": integration.effective_status,
        "last_synced_at": integration.last_synced_at,
        "error_message": integration.error_message,
        "settings": mask_settings(integration.settings, secret_keys),
        "synchronizations": [{"event_type": s.event_type, "enabled": s.enabled} for s in integration.synchronizations],
        "sync_interval": integration.sync_interval
        or (registered.manifest.default_sync_interval if registered else None),
        "has_inbound_key": integration.inbound_key_hash is not None,
        "retry_schedule": list(integration.retry_schedule or DEFAULT_SCHEDULE),
        "created_at": integration.created_at,
        "updated_at": integration.updated_at,
    }
    if with_stats:
        view["sync_stats"] = sync_stats(runtime, integration)
    return view


def sync_stats(runtime: Runtime, integration: Integration) -> dict[str, Any]:
    """The integration's event figures, both directions, from hourly counters (see :mod:`interlink.stats`)."""
    with runtime.engine.connect() as conn:
        stats = integration_stats(conn, integration.tenant_id, integration.id, datetime.now(UTC))
    return stats.as_dict()
