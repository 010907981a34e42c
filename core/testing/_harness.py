"""Running one connector call the way the core does: its context, the outcome's classification, and
everything the call left behind (communication log, exceptions, log records) for the checks to inspect."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import sysconfig
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import httpx

from interlink.connector import Connector, ConnectorContext, WebhookRequest, WebhookResult
from interlink.http import DEFAULT_TIMEOUT, RecordingClient, recording_client
from interlink.pipeline.context import RedactingLogger
from interlink.pipeline.failures import classify_failure
from interlink.registry import RegisteredConnector

__all__ = ["Harness", "Outcome", "SentRequest", "SyncRun", "classify", "observe_requests"]


@dataclass(frozen=True)
class Outcome:
    """How the core would file a call: ``succeeded``, ``transient`` (retried), ``permanent`` (failed),
    or ``unexpected`` (any other exception: the core retries it, as a bug in the connector)."""

    status: str
    error: str | None = None
    delay: float | None = None
    exception: BaseException | None = None

    def describe(self) -> str:
        if self.status == "succeeded":
            return "returned normally (the event would be marked succeeded)"
        kind = type(self.exception).__name__ if self.exception is not None else "?"
        delay = f", delay={self.delay:g}" if self.delay is not None else ""
        return f"raised {kind} ({self.status}{delay}): {self.error}"


def classify(call: Callable[[], object]) -> Outcome:
    """Call ``call`` and classify its outcome with the core's own :func:`classify_failure`."""
    try:
        call()
    except Exception as exc:
        failure = classify_failure(exc)
        if failure.kind == "not_implemented":
            return Outcome("permanent", f"does not implement it: {exc}", None, exc)
        return Outcome(failure.kind, failure.message, failure.delay, exc)
    return Outcome("succeeded")


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def record_text(record: logging.LogRecord) -> str:
    """A log record as any handler could write it: the message, and the traceback if it carries one."""
    try:
        text = record.getMessage()
    except Exception:
        text = f"{record.msg} {record.args}"
    if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    return text


@dataclass
class Harness:
    """Builds contexts for calls into one connector and keeps what the calls left behind."""

    registered: RegisteredConnector
    settings: Mapping[str, Any]
    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT)
    signing_secret: str = field(default_factory=lambda: "whsec_" + base64.b64encode(os.urandom(24)).decode())
    inbound_key: str | None = None
    """The integration's inbound key, whose hash the context carries (``ctx.inbound_key_hash``)."""
    clients: list[RecordingClient] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    _capture: _Capture = field(default_factory=_Capture)

    @property
    def logs(self) -> list[logging.LogRecord]:
        """The log records captured so far by :meth:`capturing_logs`."""
        return list(self._capture.records)

    @property
    def secrets(self) -> dict[str, str]:
        """Secret name (a setting, or ``signing_secret``) to value, as the core's redaction knows them."""
        found = {k: str(self.settings[k]) for k in sorted(self.registered.manifest.secret_keys) if self.settings.get(k)}
        found["signing_secret"] = self.signing_secret
        return found

    def context(self, timeout: httpx.Timeout | None = None) -> ConnectorContext:
        """A fresh context, as the core builds one per call (a new client, the redacting logger)."""
        values = list(self.secrets.values())
        client = recording_client(secrets=values, timeout=timeout or self.timeout)
        self.clients.append(client)
        service = self.registered.manifest.service
        logger = RedactingLogger(logging.getLogger(f"interlink.connector.{service}"), values, "int_conformance")
        return ConnectorContext(
            integration_id="int_conformance",
            settings=dict(self.settings),
            http=client,
            logger=logger,
            signing_secret=self.signing_secret,
            inbound_key_hash=hashlib.sha256(self.inbound_key.encode()).hexdigest() if self.inbound_key else None,
        )

    def connector(self) -> Connector:
        return self.registered.connector_class()

    def deliver(self, event: Mapping[str, Any], key: str, timeout: httpx.Timeout | None = None) -> Outcome:
        """One attempt of ``deliver``: a new instance and context, as the core makes for each attempt."""
        ctx, connector = self.context(timeout), self.connector()
        outcome = classify(lambda: connector.deliver(ctx, event, key))
        self.outcomes.append(outcome)
        return outcome

    def check(self, settings: Mapping[str, Any] | None = None) -> Outcome:
        """One call of ``check``, with other ``settings`` when given."""
        ctx, connector = self.context(), self.connector()
        if settings is not None:
            ctx.settings = dict(settings)
        outcome = classify(lambda: connector.check(ctx))
        self.outcomes.append(outcome)
        return outcome

    def verify(self, request: WebhookRequest) -> tuple[Outcome, WebhookResult | None]:
        """One call of ``verify_webhook``: how it ended, and the answer it asked for (a handshake)."""
        ctx, connector = self.context(), self.connector()
        answer: list[WebhookResult | None] = [None]

        def call() -> None:
            answer[0] = connector.verify_webhook(ctx, request)

        outcome = classify(call)
        self.outcomes.append(outcome)
        return outcome, answer[0]

    def handle(self, request: WebhookRequest) -> tuple[Outcome, WebhookResult | None]:
        """One call of ``handle_webhook`` on a request already verified."""
        ctx, connector = self.context(), self.connector()
        answer: list[WebhookResult | None] = [None]

        def call() -> None:
            answer[0] = connector.handle_webhook(ctx, request)

        outcome = classify(call)
        self.outcomes.append(outcome)
        return outcome, answer[0]

    def sync(
        self, state: Mapping[str, Any], *, stop_at_checkpoint: int | None = None, keep_records: bool = True
    ) -> SyncRun:
        """Run ``sync`` from ``state`` (a JSON round trip of it, as the core stores it), to its end or until
        checkpoint number ``stop_at_checkpoint`` (1-based), where it is interrupted as a killed worker is.
        With ``keep_records=False`` records are only counted (to measure the connector's own memory)."""
        ctx, connector = self.context(), self.connector()
        ctx.state = json.loads(json.dumps(dict(state)))
        run = SyncRun()

        def consume() -> None:
            items = connector.sync(ctx)
            try:
                for item in items:
                    if isinstance(item, Mapping) and set(item) == {"checkpoint"}:
                        run.checkpoints.append((run.count, item["checkpoint"] if keep_records else None))
                        for client in self.clients:
                            client.clear()  # as the core does at each checkpoint: logs must not pile up
                        if stop_at_checkpoint is not None and len(run.checkpoints) >= stop_at_checkpoint:
                            return
                        continue
                    run.count += 1
                    if keep_records:
                        run.records.append(item)
            finally:
                close = getattr(items, "close", None)
                if callable(close):
                    close()

        run.outcome = classify(consume)
        self.outcomes.append(run.outcome)
        return run

    @contextmanager
    def capturing_logs(self) -> Iterator[None]:
        """Keep every log record written meanwhile, at any level, by any logger that propagates."""
        root, capture = logging.getLogger(), self._capture
        level = root.level
        root.addHandler(capture)
        root.setLevel(logging.DEBUG)
        try:
            yield
        finally:
            root.removeHandler(capture)
            root.setLevel(level)

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def exchanges_text(self) -> list[tuple[str, str]]:
        """Each recorded exchange as ``(method url, everything it holds as JSON)``."""
        return [
            (f"{x.method} {x.url}", json.dumps(x.as_dict(), ensure_ascii=False))
            for client in self.clients
            for x in client.exchanges
        ]


@dataclass
class SyncRun:
    """What one ``sync`` call yielded: its records, and its checkpoints as ``(records before it, state)``."""

    records: list[Any] = field(default_factory=list)
    count: int = 0
    checkpoints: list[tuple[int, Any]] = field(default_factory=list)
    outcome: Outcome = field(default_factory=lambda: Outcome("succeeded"))

    def ids(self, upto: int | None = None) -> list[str]:
        """The ids of the records, those before record number ``upto`` when given."""
        chosen = self.records if upto is None else self.records[:upto]
        return [str(r.get("id")) if isinstance(r, Mapping) else repr(r) for r in chosen]


@dataclass(frozen=True)
class SentRequest:
    """A request some ``httpx.Client`` sent during :func:`observe_requests`: its timeout and its sender."""

    method: str
    url: str
    timeout: Mapping[str, Any]
    origin: str

    @property
    def missing_timeouts(self) -> list[str]:
        return [k for k in ("connect", "read", "write", "pool") if self.timeout.get(k) is None]


def _origin() -> str:
    """The first frame outside httpx, this package and the standard library: the code that sent it."""
    skip = (Path(httpx.__file__).parent, Path(__file__).parent, Path(sysconfig.get_paths()["stdlib"]))
    for frame in reversed(traceback.extract_stack()):
        path = Path(frame.filename)
        if not any(path.is_relative_to(s) for s in skip):
            return f"{frame.filename}:{frame.lineno} ({frame.name})"
    return "?"


@contextmanager
def observe_requests() -> Iterator[list[SentRequest]]:
    """Record each request any ``httpx.Client`` sends on this thread, with its effective timeout."""
    sent: list[SentRequest] = []
    original = httpx.Client.send
    thread = threading.get_ident()

    original_direct = RecordingClient._send_direct

    def note(request: httpx.Request) -> None:
        if threading.get_ident() == thread:
            timeout = request.extensions.get("timeout") or {}
            sent.append(SentRequest(request.method, str(request.url), dict(timeout), _origin()))

    def send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        note(request)
        return original(client, request, **kwargs)

    def send_direct(client: RecordingClient, request: httpx.Request) -> httpx.Response:
        note(request)  # the recording client's short path skips httpx.Client.send
        return original_direct(client, request)

    with mock.patch.object(httpx.Client, "send", send), mock.patch.object(RecordingClient, "_send_direct", send_direct):
        yield sent
