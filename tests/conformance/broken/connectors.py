"""A correct reference connector and broken variants of it, each with the one defect its name says."""

from __future__ import annotations

import copy
import hmac
import json
import logging
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from interlink.connector import (
    CheckResult,
    Connector,
    ConnectorContext,
    PermanentError,
    TransientError,
    WebhookRequest,
    WebhookResult,
)
from interlink.envelope import envelope
from interlink.http import raise_for_status
from interlink.manifest import Manifest
from interlink.registry import RegisteredConnector
from tests.conformance.broken.emulator import signature

BASE_MANIFEST: dict[str, Any] = json.loads(Path(__file__).with_name("manifest.json").read_text(encoding="utf-8"))

log = logging.getLogger(__name__)


class GoodConnector(Connector):
    """Speaks the reference vendor (tests/conformance/broken/emulator.py) correctly: passes every check."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        raise_for_status(self.get(ctx, "/me"), setting="apiKey")
        return CheckResult(ok=True, message="connected")

    def get(self, ctx: ConnectorContext, path: str, **params: Any) -> httpx.Response:
        return ctx.http.get(
            f"{ctx.settings['baseUrl']}{path}",
            params=params,
            headers={"Authorization": f"Bearer {ctx.settings['apiKey']}"},
        )

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        after = int(ctx.state.get("after", 0))
        while True:
            response = self.get(ctx, "/records", after=after)
            raise_for_status(response, setting="apiKey")
            page = response.json()
            yield from self.records(page["records"])
            if page["next"] is None:
                return
            after = page["next"]
            yield {"checkpoint": self.state(ctx, after)}

    def records(self, records: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        return iter(records)

    def state(self, ctx: ConnectorContext, after: int) -> dict[str, Any]:
        return {"after": after}

    def verify_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult | None:
        header = request.headers.get("x-signature")
        if not header:
            raise PermanentError("the webhook has no x-signature header", setting="webhookSecret")
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        stamp = int(parts.get("t", "0"))
        expected = signature(str(ctx.settings["webhookSecret"]), stamp, request.body)
        if not hmac.compare_digest(expected, header):
            raise PermanentError("the signature does not match: check settings.webhookSecret", setting="webhookSecret")
        self.check_age(request, stamp)
        return None

    def check_age(self, request: WebhookRequest, stamp: int) -> None:
        if stamp < request.received_at.timestamp() - 300:
            raise PermanentError("the webhook was signed more than 300 s before it arrived", setting="webhookSecret")

    def handle_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult:
        body = json.loads(request.body)
        event = envelope(
            id=body["id"], type=body["type"], source="reference", occurred_at=body["created"], raw=body, data=body
        )
        return WebhookResult(events=[event])

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


class CheckNamesNoSetting(GoodConnector):
    def check(self, ctx: ConnectorContext) -> CheckResult:
        if self.get(ctx, "/me").status_code in (401, 403):
            raise PermanentError("access denied")
        return super().check(ctx)


class CheckpointsAhead(GoodConnector):
    """Saves the cursor of the page after next: a resumed run skips a page."""

    def state(self, ctx: ConnectorContext, after: int) -> dict[str, Any]:
        return {"after": after + 20}


class CollectsEveryRecord(GoodConnector):
    """Reads every page before yielding anything."""

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        everything = list(super().sync(ctx))
        yield from (item for item in everything if "checkpoint" not in item)
        checkpoints = [item for item in everything if "checkpoint" in item]
        yield from checkpoints[-1:]


class StateIsNotJson(GoodConnector):
    def state(self, ctx: ConnectorContext, after: int) -> dict[str, Any]:
        return {"after": after, "read_at": ctx.now()}


class SyncIgnoresRetryAfter(GoodConnector):
    def get(self, ctx: ConnectorContext, path: str, **params: Any) -> httpx.Response:
        response = super().get(ctx, path, **params)
        if response.status_code == 429 and path == "/records":
            raise TransientError("rate limited")
        return response


class StateHoldsTheKey(GoodConnector):
    def state(self, ctx: ConnectorContext, after: int) -> dict[str, Any]:
        return {"after": after, "key": ctx.settings["apiKey"]}


class IgnoresTheTimestamp(GoodConnector):
    def check_age(self, request: WebhookRequest, stamp: int) -> None:
        pass


class AcceptsUnsignedWebhooks(GoodConnector):
    def verify_webhook(self, ctx: ConnectorContext, request: WebhookRequest) -> WebhookResult | None:
        if "x-signature" not in request.headers:
            return None
        return super().verify_webhook(ctx, request)


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
        registered(DeclaresDeliverWithoutIt, manifest("broken_caps", capabilities=["deliver"])),
        "test_capabilities_match_methods",
        "deliver is declared in the manifest's capabilities but DeclaresDeliverWithoutIt does not implement",
    ),
    Broken(
        "refused credentials without the setting",
        registered(CheckNamesNoSetting, manifest("broken_check")),
        "test_check_with_bad_credentials_names_the_setting",
        "HTTP 401: check raised PermanentError (permanent): access denied, but names no setting",
    ),
    Broken(
        "checkpoint ahead of the records",
        registered(CheckpointsAhead, manifest("broken_cursor")),
        "test_sync_resumes_from_every_checkpoint",
        "record(s) never read",
    ),
    Broken(
        "sync collects every record first",
        registered(CollectsEveryRecord, manifest("broken_memory")),
        "test_sync_memory_does_not_grow_with_records",
        "memory grows with the number of records",
    ),
    Broken(
        "sync state with a datetime",
        registered(StateIsNotJson, manifest("broken_state")),
        "test_sync_state_survives_a_json_round_trip",
        "checkpoint 1: the state is not JSON",
    ),
    Broken(
        "sync 429 without the Retry-After delay",
        registered(SyncIgnoresRetryAfter, manifest("broken_sync_429")),
        "test_sync_faults_are_classified",
        "HTTP 429: the delay is None",
    ),
    Broken(
        "sync state holding the API key",
        registered(StateHoldsTheKey, manifest("broken_state_key")),
        "test_secrets_never_leak_from_check_sync_or_webhooks",
        "the value of secret 'apiKey' appears in a sync state",
    ),
    Broken(
        "webhook timestamp not checked",
        registered(IgnoresTheTimestamp, manifest("broken_replay")),
        "test_webhook_stale_replay_is_refused",
        "signed an hour before it arrived: verify_webhook returned normally",
    ),
    Broken(
        "unsigned webhooks accepted",
        registered(AcceptsUnsignedWebhooks, manifest("broken_unsigned")),
        "test_webhook_missing_signature_is_refused",
        "no signature or authorization header: verify_webhook returned normally",
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
