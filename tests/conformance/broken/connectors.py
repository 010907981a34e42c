"""A correct reference connector and broken variants of it, each with the one defect its name says."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from interlink.connector import CheckResult, Connector, ConnectorContext, PermanentError, TransientError
from interlink.http import raise_for_status
from interlink.manifest import Manifest
from interlink.registry import RegisteredConnector

BASE_MANIFEST: dict[str, Any] = json.loads(Path(__file__).with_name("manifest.json").read_text(encoding="utf-8"))

log = logging.getLogger(__name__)


class GoodConnector(Connector):
    """POSTs the event to ``{baseUrl}/events`` with a bearer key and the idempotency key: passes every check."""

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        response = self.post(ctx, event, idempotency_key)
        self.classify(response)

    def post(self, ctx: ConnectorContext, event: Mapping[str, Any], key: str) -> httpx.Response:
        return ctx.http.post(
            f"{ctx.settings['baseUrl']}/events",
            json={"type": event["type"], "data": event["data"]},
            headers={"Authorization": f"Bearer {ctx.settings['apiKey']}", "Idempotency-Key": key},
        )

    def classify(self, response: httpx.Response) -> None:
        raise_for_status(response, setting="apiKey")


class FiveHundredsArePermanent(GoodConnector):
    def classify(self, response: httpx.Response) -> None:
        if response.status_code >= 500:
            raise PermanentError(f"the vendor failed (HTTP {response.status_code})")
        super().classify(response)


class NewKeyPerAttempt(GoodConnector):
    def post(self, ctx: ConnectorContext, event: Mapping[str, Any], key: str) -> httpx.Response:
        return super().post(ctx, event, str(uuid.uuid4()))


class LogsItsApiKey(GoodConnector):
    def post(self, ctx: ConnectorContext, event: Mapping[str, Any], key: str) -> httpx.Response:
        log.info("posting to %s with key %s", ctx.settings["baseUrl"], ctx.settings["apiKey"])
        return super().post(ctx, event, key)


class NoTimeout(GoodConnector):
    def post(self, ctx: ConnectorContext, event: Mapping[str, Any], key: str) -> httpx.Response:
        with httpx.Client(timeout=None) as client:  # noqa: S113 -- the defect under test
            return client.post(
                f"{ctx.settings['baseUrl']}/events",
                json={"type": event["type"], "data": event["data"]},
                headers={"Authorization": f"Bearer {ctx.settings['apiKey']}", "Idempotency-Key": key},
            )


class DeclaresDeliverWithoutIt(Connector):
    def check(self, ctx: ConnectorContext) -> CheckResult:
        return CheckResult(ok=True)


class IgnoresRetryAfter(GoodConnector):
    def classify(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            raise TransientError("rate limited")
        super().classify(response)


class TimeoutsArePermanent(GoodConnector):
    def post(self, ctx: ConnectorContext, event: Mapping[str, Any], key: str) -> httpx.Response:
        try:
            return super().post(ctx, event, key)
        except httpx.TimeoutException:
            raise PermanentError("the vendor is too slow") from None


class ClientErrorsAreTransient(GoodConnector):
    def classify(self, response: httpx.Response) -> None:
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise TransientError(f"the vendor refused (HTTP {response.status_code})")
        super().classify(response)


def manifest(service: str, **changes: Any) -> Manifest:
    """The base manifest under another service id, with top-level ``changes`` (``settings__x`` edits settings)."""
    data = copy.deepcopy(BASE_MANIFEST)
    data["service"] = service
    for key, value in changes.items():
        if key.startswith("settings__"):
            name = key.removeprefix("settings__")
            if value is None:
                data["settings"].pop(name, None)
            else:
                data["settings"][name] = value
        else:
            data[key] = value
    return Manifest.from_dict(data)


def registered(connector_class: type[Connector], manifest: Manifest) -> RegisteredConnector:
    """Register without the registry's checks, as a broken third-party package would be found."""
    return RegisteredConnector(manifest, connector_class, "broken", "interlink-conformance-tests", "0.0.1")


@dataclass(frozen=True)
class Broken:
    """A broken connector, the one check that must fail on it, and text its failure message must hold."""

    name: str
    connector: RegisteredConnector
    check: str
    message: str


BROKEN = [
    Broken(
        "5xx treated as permanent",
        registered(FiveHundredsArePermanent, manifest("broken_5xx")),
        "test_deliver_5xx_is_transient",
        "HTTP 500: deliver raised PermanentError (permanent)",
    ),
    Broken(
        "new idempotency key per attempt",
        registered(NewKeyPerAttempt, manifest("broken_key")),
        "test_deliver_sends_the_same_idempotency_key_on_every_attempt",
        "header idempotency-key was",
    ),
    Broken(
        "logs its API key",
        registered(LogsItsApiKey, manifest("broken_log")),
        "test_deliver_secrets_never_leak",
        "secret 'apiKey' appears in a log record of logger 'tests.conformance.broken.connectors'",
    ),
    Broken(
        "requests without a timeout",
        registered(NoTimeout, manifest("broken_timeout")),
        "test_every_request_has_a_timeout",
        "had no connect, read, write, pool timeout (sent from",
    ),
    Broken(
        "declares deliver without implementing it",
        registered(DeclaresDeliverWithoutIt, manifest("broken_caps", capabilities=["check", "deliver"])),
        "test_capabilities_match_methods",
        "deliver is declared in the manifest's capabilities but DeclaresDeliverWithoutIt does not implement",
    ),
    Broken(
        "429 without the Retry-After delay",
        registered(IgnoresRetryAfter, manifest("broken_429")),
        "test_deliver_429_is_transient_with_retry_after",
        "but its delay should be 7",
    ),
    Broken(
        "timeouts treated as permanent",
        registered(TimeoutsArePermanent, manifest("broken_slow")),
        "test_deliver_timeout_is_transient",
        "deliver raised PermanentError (permanent): the vendor is too slow",
    ),
    Broken(
        "4xx treated as transient",
        registered(ClientErrorsAreTransient, manifest("broken_4xx")),
        "test_deliver_4xx_is_permanent",
        "HTTP 400: deliver raised TransientError (transient)",
    ),
    Broken(
        "settings schema accepts unknown keys",
        registered(GoodConnector, manifest("broken_schema", settings__additionalProperties=None)),
        "test_mutated_settings_are_rejected_with_pointers",
        "settings with an unknown setting 'conformanceUnknownSetting' were accepted",
    ),
    Broken(
        "deliver declared without an outbound event",
        registered(GoodConnector, manifest("broken_events", sync_events=[])),
        "test_manifest_is_valid",
        "it declares deliver but no sync_events with direction 'outbound'",
    ),
]
