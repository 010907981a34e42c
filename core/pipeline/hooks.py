"""Inbound webhooks: verify and store a vendor's request while it waits, parse it on a worker later.

The request side (:func:`receive`) runs the connector's ``verify_webhook`` and stores the request with its
raw body (``received``), or a ``rejected`` row that says why (no body). The vendor is answered at once; the
stored id goes to the ``process_hook`` actor after the commit (outbox, as for deliveries).

The worker side, which parses stored requests into events, is :mod:`interlink.pipeline.hook_worker`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from interlink import notifications
from interlink.connector import PermanentError, WebhookRequest, WebhookResult
from interlink.errors import NotFoundError
from interlink.http import sensitive_header
from interlink.ids import new_id
from interlink.pipeline.context import connector_call
from interlink.pipeline.failures import classify_failure
from interlink.registry import RegisteredConnector
from interlink.secrets import MASK, SecretKeyError, redact
from interlink.store import integrations as integration_rows
from interlink.store.integrations import Integration
from interlink.store.tables import integrations, webhook_requests

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = [
    "FAILURES_BEFORE_ERROR",
    "HOOK_STATUSES",
    "MAX_ATTEMPTS",
    "Headers",
    "HookAnswer",
    "HookTarget",
    "find_target",
    "list_requests",
    "receive",
    "redact_headers",
    "refuse_too_large",
]

log = logging.getLogger(__name__)

HOOK_STATUSES = ("received", "processing", "processed", "failed", "rejected")
FAILURES_BEFORE_ERROR = 5
"""Verification failures in a row that put the integration in ``error``."""
MAX_ATTEMPTS = 5
"""Worker attempts at one stored request (transient failures, lost workers) before it is ``failed``."""
MAX_RETRY_WAIT = 3600.0
MAX_ERROR = 2000
MAX_EVENT_ID = 200
REAP_BATCH = 1000
_FROM_HOOKS = " webhooks in a row failed verification: "
"""Marks an ``error_message`` that webhooks set, so that only such an error is cleared by a verified one."""


class Headers(Mapping[str, str]):
    """A request's headers for the connector: names in lower case, looked up in any case (``Stripe-Signature``)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._items = {name.lower(): value for name, value in headers.items()}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class HookTarget:
    """The integration a request is addressed to, and the connector that verifies and parses it."""

    integration: Integration
    registered: RegisteredConnector


@dataclass(frozen=True)
class HookAnswer:
    """What to answer the vendor: a body as given, or a problem (``detail``) when ``problem`` is set."""

    status: int
    body: Any = None
    problem: bool = False
    headers: dict[str, str] | None = None


def find_target(runtime: Runtime, integration_id: str) -> HookTarget:
    """The integration by id, whatever its tenant; :class:`NotFoundError` unless its connector takes webhooks."""
    with runtime.engine.connect() as conn:
        found = integration_rows.get_integrations_by_ids(conn, [integration_id], with_synchronizations=False)
        found = found if _configured(conn, integration_id) else []
    registered = runtime.registry.get(found[0].service) if found else None
    if not found or registered is None or "handle_webhook" not in registered.manifest.capabilities:
        raise NotFoundError(f"no integration '{integration_id}' receives webhooks")
    return HookTarget(found[0], registered)


def _configured(conn: sa.Connection, integration_id: str, tenant_id: str | None = None) -> bool:
    """Whether the id is an integration a tenant configured (not a notification endpoint, ``kind`` notification)."""
    mine = [integrations.c.id == integration_id, integrations.c.kind == "integration"]
    if tenant_id is not None:
        mine.append(integrations.c.tenant_id == tenant_id)
    return conn.execute(sa.select(integrations.c.id).where(*mine)).first() is not None


def redact_headers(headers: Mapping[str, str], secret_values: list[str]) -> dict[str, str]:
    """Headers as the log keeps them: credentials (``Authorization``, signatures, tokens) and secret values masked."""
    return {name: MASK if sensitive_header(name) else redact(value, secret_values) for name, value in headers.items()}


def receive(runtime: Runtime, target: HookTarget, request: WebhookRequest) -> HookAnswer:
    """Verify ``request`` and store it; dispatch it to a worker once committed. Runs in a thread."""
    integration = target.integration
    request = dataclasses.replace(request, headers=Headers(request.headers))
    try:
        call = connector_call(runtime, integration, target.registered)
    except SecretKeyError:
        log.error("webhook for %s: its settings cannot be decrypted", integration.id)
        detail = "the integration's settings cannot be read on this server; try again later"
        return HookAnswer(503, detail, problem=True, headers={"Retry-After": "60"})
    headers = redact_headers(request.headers, call.secret_values)
    try:
        handshake = call.connector.verify_webhook(call.context, request)
    except PermanentError as exc:
        message = call.redact(exc.message)[:MAX_ERROR]
        _store(
            runtime,
            integration,
            request,
            headers,
            "rejected",
            401,
            message,
            failed_verification=True,
            setting=exc.setting,
        )
        return HookAnswer(401, f"the request failed verification: {message}", problem=True)
    except Exception as exc:  # a connector bug: the vendor tries again later; the tenant sees it in the log
        log.warning("webhook for %s: verify_webhook raised %s", integration.id, type(exc).__name__)
        message = call.redact(f"the {integration.service} connector failed to verify: {classify_failure(exc).message}")
        _store(runtime, integration, request, headers, "rejected", 503, message[:MAX_ERROR])
        return HookAnswer(503, "the request could not be verified; try again later", problem=True)
    if handshake is not None:
        if isinstance(handshake, WebhookResult) and 200 <= handshake.response_status <= 599:
            return HookAnswer(handshake.response_status, handshake.response_body)
        message = f"the {integration.service} connector's verify_webhook returned {type(handshake).__name__}"
        _store(runtime, integration, request, headers, "rejected", 503, message)
        return HookAnswer(503, "the request could not be verified; try again later", problem=True)
    if not integration.enabled:
        detail = "the integration is disabled: the request was refused; enable the integration to receive webhooks"
        _store(runtime, integration, request, headers, "rejected", 409, detail)
        return HookAnswer(409, detail, problem=True)
    request_id = _store(runtime, integration, request, headers, "received", 200, None)
    runtime.pipeline.dispatch_hooks([request_id])
    return HookAnswer(200, {"received": True, "id": request_id})


def refuse_too_large(runtime: Runtime, target: HookTarget, request: WebhookRequest, size: int) -> HookAnswer:
    """Answer 413 for a body over ``config.hook_max_bytes`` and log the attempt (without its body)."""
    limit = runtime.config.hook_max_bytes
    detail = f"the body ({size} bytes or more) is over the limit of {limit} bytes (INTERLINK_HOOK_MAX_BYTES)"
    headers = redact_headers(request.headers, [])
    _store(runtime, target.integration, request, headers, "rejected", 413, detail, body_size=size)
    return HookAnswer(413, detail, problem=True)


def _store(
    runtime: Runtime,
    integration: Integration,
    request: WebhookRequest,
    headers: dict[str, str],
    status: str,
    response_status: int,
    error: str | None,
    *,
    failed_verification: bool = False,
    setting: str | None = None,
    body_size: int | None = None,
) -> str:
    """Insert the request's row; a ``received`` one resets the failures in a row, a failed verification adds one.

    ``setting`` is the settings key the connector blamed, named in the integration's error message.
    """
    request_id = new_id("hook")
    received = status == "received"
    mine = integrations.c.id == integration.id
    notices: list[str] = []
    with runtime.engine.begin() as conn:
        conn.execute(
            webhook_requests.insert().values(
                id=request_id,
                tenant_id=integration.tenant_id,
                integration_id=integration.id,
                status=status,
                received_at=request.received_at,
                method=request.method[:10],
                headers=headers,
                body=request.body if received else b"",
                query=(urlsplit(request.path).query or None) if received else None,
                body_size=len(request.body) if body_size is None else body_size,
                response_status=response_status,
                error=error,
                dispatched_at=request.received_at if received else None,
                processed_at=None if received else request.received_at,
            )
        )
        if received:
            from_hooks = integrations.c.error_message.like(f"%{_FROM_HOOKS}%")
            recovered = conn.execute(
                integrations.update()
                .where(mine, integrations.c.hook_failures > 0)
                .values(
                    hook_failures=0,
                    status=sa.case(
                        (sa.and_(integrations.c.status == "error", from_hooks), "connected"),
                        else_=integrations.c.status,
                    ),
                    error_message=sa.case((from_hooks, sa.null()), else_=integrations.c.error_message),
                )
                .returning(integrations.c.status, integrations.c.error_message)
            ).first()
            if recovered is not None and recovered.status == "connected" and integration.status == "error":
                notices = notifications.status_changed(runtime, conn, integration.id, "error", "connected")
        elif failed_verification:
            failures = conn.execute(
                integrations.update()
                .where(mine)
                .values(hook_failures=integrations.c.hook_failures + 1)
                .returning(integrations.c.hook_failures)
            ).scalar()
            if failures is not None and failures >= FAILURES_BEFORE_ERROR:
                named = setting is None or f"settings.{setting}" in (error or "")
                fix = "" if named else f" — check settings.{setting}"
                message = f"{failures}{_FROM_HOOKS}{error}{fix}"[:MAX_ERROR]
                before = conn.execute(sa.select(integrations.c.status).where(mine)).scalar()
                conn.execute(
                    integrations.update()
                    .where(mine)
                    .values(
                        status=sa.case((integrations.c.status == "syncing", "syncing"), else_="error"),
                        error_message=message,
                    )
                )
                if before is not None and before not in ("error", "syncing"):
                    notices = notifications.status_changed(runtime, conn, integration.id, before, "error", message)
    runtime.pipeline.dispatch(notices)
    return request_id


# -- the log ---------------------------------------------------------------------------------------

_VIEW = [
    webhook_requests.c.id,
    webhook_requests.c.received_at,
    webhook_requests.c.method,
    webhook_requests.c.status,
    webhook_requests.c.response_status,
    webhook_requests.c.error,
    webhook_requests.c.body_size,
    webhook_requests.c.events_created,
    webhook_requests.c.attempts,
    webhook_requests.c.processed_at,
    webhook_requests.c.headers,
]


def list_requests(
    runtime: Runtime, tenant_id: str, integration_id: str, *, page: int = 1, limit: int = 50
) -> tuple[list[dict[str, Any]], bool]:
    """A page of the integration's webhook requests, newest first, and whether more follow."""
    with runtime.engine.connect() as conn:
        if not _configured(conn, integration_id, tenant_id):
            raise NotFoundError(f"integration '{integration_id}' not found")
        rows = conn.execute(
            sa.select(*_VIEW)
            .where(webhook_requests.c.tenant_id == tenant_id, webhook_requests.c.integration_id == integration_id)
            .order_by(webhook_requests.c.id.desc())
            .limit(limit + 1)
            .offset((page - 1) * limit)
        ).all()
    return [{str(c.name): getattr(r, c.name) for c in _VIEW} for r in rows[:limit]], len(rows) > limit
