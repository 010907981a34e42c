"""The connector author's contract: the base class, its context and the typed errors.

A connector is a manifest plus a subclass of :class:`Connector`. The core calls the methods the
manifest's ``capabilities`` declare (``check``, ``deliver``, ``sync``, ``handle_webhook``); each call
gets a :class:`ConnectorContext` with the decrypted settings and the tools the connector may use.

Errors are classified, as dramatiq's ``Retry`` and the Singer SDK's retriable/fatal errors are:

* :class:`TransientError` -- try again later (optionally after ``delay`` seconds);
* :class:`PermanentError` -- fail now, with a message a person can act on, naming the setting to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import httpx

    from interlink.manifest import Manifest

__all__ = [
    "CAPABILITIES",
    "CheckResult",
    "Connector",
    "ConnectorContext",
    "ConnectorError",
    "PermanentError",
    "TransientError",
    "WebhookRequest",
    "WebhookResult",
]

CAPABILITIES = ("check", "deliver", "sync", "handle_webhook")


class ConnectorError(Exception):
    """Base of the errors a connector raises on purpose; the core classifies by subclass."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.setting = setting
        """The settings key at fault (``"apiKey"``), when the user can fix it there."""


class TransientError(ConnectorError):
    """The call may succeed later: a timeout, a 5xx, a 429. ``delay`` is the vendor's wish in seconds."""

    def __init__(self, message: str, *, delay: float | None = None, setting: str | None = None) -> None:
        super().__init__(message, setting=setting)
        self.delay = delay


class PermanentError(ConnectorError):
    """Retrying cannot help (bad credentials, a rejected payload). ``message`` is shown to the user."""


@dataclass(frozen=True)
class CheckResult:
    """What ``check`` found: ``ok`` and a message a person can read."""

    ok: bool
    message: str = ""


@dataclass(frozen=True)
class WebhookRequest:
    """An inbound HTTP request as the vendor sent it: the raw body is what signatures cover."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When Interlink received it: the same when :meth:`Connector.handle_webhook` runs later on a worker."""

    def header(self, name: str) -> str | None:
        """The value of header ``name``, whatever the case of its name as sent; ``None`` when absent."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


@dataclass(frozen=True)
class WebhookResult:
    """A verified webhook: the events it carries, and optionally the exact answer to give the vendor."""

    events: list[dict[str, Any]] = field(default_factory=list)
    response_status: int = 200
    response_body: Any = None


@dataclass
class ConnectorContext:
    """Everything a connector call may use. Connectors never read the environment or the store."""

    integration_id: str
    settings: Mapping[str, Any]
    """Decrypted settings, validated against the manifest's schema."""
    http: httpx.Client
    """The HTTP client to reach the vendor with; it records every attempt and carries timeouts."""
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
    """Log through this: every secret value of the integration is masked in what it writes."""
    state: dict[str, Any] = field(default_factory=dict)
    """The sync state (a JSON object) saved at the last checkpoint; empty on the first run."""
    now: Any = field(default=lambda: datetime.now(UTC))
    """The clock, a callable returning an aware ``datetime``; tests replace it."""
    signing_secret: str | None = None
    """The integration's own signing secret (``whsec_...``), for connectors that sign what they send."""
    inbound_key_hash: str | None = None
    """SHA-256 hex of the integration's inbound key (``ik_...``), for connectors that accept it as a Bearer token."""


class Connector:
    """Base class of every connector; subclass it and implement what the manifest declares.

    The class is instantiated once per call with no arguments; keep no state on it between calls.
    Methods a manifest does not declare are never called. Each default raises ``NotImplementedError``.
    """

    manifest: ClassVar[Manifest]
    """Set by the registry when the class is registered with its manifest."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """Make one cheap authenticated call to prove the settings work.

        Return ``CheckResult(ok=True)``; raise :class:`PermanentError` naming the setting at fault
        (``setting="apiKey"``) for bad credentials, :class:`TransientError` when the vendor is down.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement check")

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Push one event to the vendor. Return normally on success.

        ``event`` is the envelope (``id``, ``type``, ``occurred_at``, ``data``, ``payload_ref``). ``idempotency_key``
        is the same on every attempt of one event: pass it to vendors that take one.
        Raise :class:`TransientError` (with ``delay`` from ``Retry-After``) or :class:`PermanentError`.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement deliver")

    def deliver_batch(
        self, ctx: ConnectorContext, batch: Sequence[tuple[Mapping[str, Any], str]]
    ) -> list[Exception | None]:
        """Push several events of one integration at once, ``(event, idempotency_key)`` pairs, oldest first.

        Optional, part of ``deliver``: override it when the vendor has a bulk endpoint. Return one entry per
        event, in order: ``None`` for delivered, else the exception :meth:`deliver` would have raised for
        it (a :class:`TransientError` or :class:`PermanentError`). The default delivers one by one.
        """
        outcomes: list[Exception | None] = []
        for event, key in batch:
            try:
                self.deliver(ctx, event, key)
            except Exception as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        return outcomes

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Pull records from the vendor, starting from ``ctx.state``; yield them as they arrive.

        Yield record dicts (each with a stable ``id``), and from time to time a checkpoint
        ``{"checkpoint": new_state}``: the core saves the records before it and the state together.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement sync")

    def verify_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult | None:
        """Decide, while the vendor waits, whether an inbound request is genuine. Part of ``handle_webhook``.

        Return ``None`` to accept it: the core stores the raw body, answers 200 at once and calls
        :meth:`handle_webhook` on a worker. Return a :class:`WebhookResult` to answer with its
        ``response_status``/``response_body`` and store nothing (a handshake such as Adapty's
        ``adapty_check``). Raise :class:`PermanentError` naming the setting (``setting="webhookSecret"``)
        when verification fails: the core answers 401 and stores no event. Check timestamps against
        ``request.received_at``, never the wall clock. Keep it fast: no network calls.
        """
        raise PermanentError(f"{type(self).__name__} does not verify webhooks, so none is accepted")

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        """Parse a request :meth:`verify_webhook` accepted into events; runs on a worker, later.

        Return a :class:`WebhookResult` whose ``events`` are inbound envelopes
        (:func:`interlink.envelope.envelope`), each with the vendor's event ``id``: the core records an id
        once per integration, so a vendor's retry of the same event creates nothing new. Raise
        :class:`PermanentError` for a body that cannot be parsed.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement handle_webhook")

    @classmethod
    def implemented_capabilities(cls) -> set[str]:
        """The capabilities whose method this class overrides."""
        return {name for name in CAPABILITIES if getattr(cls, name) is not getattr(Connector, name)}
