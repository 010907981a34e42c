"""Checking an integration: call its connector's ``check`` once and say, in words, whether the settings work.

A failed check is an answer, not an error: :class:`CheckOutcome` carries ``ok`` and the message the
connector gave (a :class:`~interlink.connector.PermanentError` for bad credentials naming the setting,
a :class:`~interlink.connector.TransientError` when the vendor is down), with every secret value of the
integration masked. Only a missing integration (404) or a connector without ``check`` (409) raise.
The check changes nothing: the integration's status and error message stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import anyio.to_thread

from interlink.connector import CheckResult
from interlink.errors import ConflictError
from interlink.integrations import get_integration
from interlink.pipeline.context import connector_call
from interlink.pipeline.failures import classify_failure
from interlink.runtime import Runtime
from interlink.secrets import SecretKeyError

__all__ = ["CHECK_TIMEOUT", "CheckOutcome", "check_integration", "check_integration_async"]

CHECK_TIMEOUT = 20.0
"""Seconds a check may take before the answer is ``ok: false`` (the HTTP client's own timeouts are longer)."""
MAX_MESSAGE = 2000


@dataclass(frozen=True)
class CheckOutcome:
    """Whether the integration's settings work, and a message a person can act on."""

    ok: bool
    message: str


def check_integration(runtime: Runtime, tenant_id: str, integration_id: str) -> CheckOutcome:
    """Run the connector's ``check`` for one integration of ``tenant_id``, in this thread.

    Raises :class:`~interlink.errors.NotFoundError` for an integration the tenant does not have, and
    :class:`~interlink.errors.ConflictError` when its connector has no ``check``.
    """
    integration = get_integration(runtime, tenant_id, integration_id)
    service = integration.service
    registered = runtime.registry.get(service)
    if registered is None:
        raise ConflictError(f"no installed connector for service '{service}': install its plugin to check it")
    no_check = f"the {service} connector has no check"
    if "check" not in registered.manifest.capabilities:
        raise ConflictError(no_check)
    try:
        call = connector_call(runtime, integration, registered)
    except SecretKeyError as exc:  # the stored settings cannot be read: nothing to call the vendor with
        return CheckOutcome(False, str(exc))
    try:
        result = call.connector.check(call.context)
    except Exception as exc:  # every failure of connector code is an answer, never a 500
        failure = classify_failure(exc)
        if failure.kind == "not_implemented":
            raise ConflictError(no_check) from None
        message = failure.message or type(exc).__name__
        setting = getattr(exc, "setting", None)
        if setting and setting not in message:
            message = f"{message} (setting '{setting}')"
        return CheckOutcome(False, call.redact(message)[:MAX_MESSAGE])
    if not isinstance(result, CheckResult):
        return CheckOutcome(False, f"the {service} connector is faulty: check returned {type(result).__name__}")
    default = f"the {service} settings work" if result.ok else f"the {service} check failed"
    return CheckOutcome(bool(result.ok), call.redact(str(result.message or default))[:MAX_MESSAGE])


async def check_integration_async(
    runtime: Runtime, tenant_id: str, integration_id: str, *, timeout: float = CHECK_TIMEOUT
) -> CheckOutcome:
    """:func:`check_integration` in a worker thread, so an event loop is not blocked by the vendor.

    After ``timeout`` seconds the answer is ``ok: false``; the thread is left to end on the HTTP client's
    own timeouts, and its result is dropped.
    """
    with anyio.move_on_after(timeout):
        return await anyio.to_thread.run_sync(
            check_integration, runtime, tenant_id, integration_id, abandon_on_cancel=True
        )
    return CheckOutcome(False, f"the check did not finish within {timeout:g} s: the vendor may be down or slow")
