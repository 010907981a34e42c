"""``ConnectorSuite``: the conformance suite a connector author subclasses in their own tests.

Each check is its own pytest test with a stable name, runs offline against a vendor emulator with
the :class:`~interlink.testing.proxy.FaultProxy` in between, and fails with a message that says what is
wrong and how to fix it. Checks of a capability the manifest does not declare are skipped.
"""

from __future__ import annotations

import json
import re
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar, NoReturn

import httpx
import pytest
from hypothesis import HealthCheck, Phase, find, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import HypothesisException

from interlink.connector import Connector, WebhookRequest
from interlink.envelope import is_envelope
from interlink.ids import new_id
from interlink.manifest import Manifest, ManifestError
from interlink.registry import ConnectorRegistry, RegisteredConnector, load_registry
from interlink.testing._harness import Harness, Outcome, SyncRun, observe_requests, record_text
from interlink.testing.emulators import emulator_class
from interlink.testing.emulators.base import Emulator
from interlink.testing.proxy import Fault, FaultProxy, SeenRequest
from interlink.testing.sink import EchoSink
from interlink.testing.strategies import (
    Mutation,
    example_settings,
    mutated_settings,
    property_strategy,
    settings_mutations,
    valid_settings,
)

__all__ = ["CHECKS", "ConnectorSuite"]

CHECKS = (
    "test_manifest_is_valid",
    "test_capabilities_match_methods",
    "test_generated_settings_are_accepted",
    "test_mutated_settings_are_rejected_with_pointers",
    "test_deliver_succeeds_against_the_emulator",
    "test_deliver_5xx_is_transient",
    "test_deliver_timeout_is_transient",
    "test_deliver_429_is_transient_with_retry_after",
    "test_deliver_4xx_is_permanent",
    "test_deliver_sends_the_same_idempotency_key_on_every_attempt",
    "test_deliver_secrets_never_leak",
    "test_every_request_has_a_timeout",
    "test_check_succeeds_against_the_emulator",
    "test_check_with_bad_credentials_names_the_setting",
    "test_sync_reads_every_record_once",
    "test_sync_resumes_from_every_checkpoint",
    "test_sync_state_survives_a_json_round_trip",
    "test_sync_faults_are_classified",
    "test_sync_memory_does_not_grow_with_records",
    "test_webhook_genuine_request_is_accepted",
    "test_webhook_tampered_body_is_refused",
    "test_webhook_wrong_secret_is_refused",
    "test_webhook_missing_signature_is_refused",
    "test_webhook_stale_replay_is_refused",
    "test_secrets_never_leak_from_check_sync_or_webhooks",
)
"""Every check, in the order they run."""

_ID_HEADER = re.compile(r"idempot|request-id|dedup|(^|-)id$", re.IGNORECASE)
_ID_FIELD = re.compile(r"idempot|unique_id|uniqueid|dedup", re.IGNORECASE)


@cache
def _registry() -> ConnectorRegistry:
    return load_registry()


@cache
def _example(manifest_json: str) -> dict[str, Any]:
    return example_settings(Manifest.from_dict(json.loads(manifest_json)))


def _fail(what: str, fix: str, details: list[str] | None = None) -> NoReturn:
    lines = [what, *(f"  - {d}" for d in details or [])]
    pytest.fail("\n".join([*lines, f"How to fix: {fix}"]), pytrace=False)


def _run_examples(test: Callable[[], None]) -> None:
    """Run a hypothesis test; turn its AssertionError (message plus the falsifying example) into a failure."""
    try:
        test()
    except AssertionError as exc:  # the message shows the (shrunk) example; hypothesis' notes repeat it
        pytest.fail(str(exc), pytrace=False)


def _id_fields(value: Any, path: str = "") -> dict[str, str]:
    """Fields of a JSON body whose name says they carry an idempotency key, by path."""
    found: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}/{key}"
            if _ID_FIELD.search(str(key)) and isinstance(item, str | int):
                found[where] = str(item)
            found.update(_id_fields(item, where))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(_id_fields(item, f"{path}/{index}"))
    return found


def _id_values(request: SeenRequest) -> dict[str, str]:
    values = {f"header {k}": v for k, v in request.headers.items() if _ID_HEADER.search(k)}
    try:
        body = json.loads(request.body) if request.body else None
    except ValueError:
        body = None
    values.update({f"body field {p}": v for p, v in _id_fields(body).items()})
    return values


class ConnectorSuite:
    """Subclass it in a test module (``class TestAcme(ConnectorSuite): service = "acme"``) to run every check.

    Class attributes tune it; override :meth:`emulator` to put your vendor emulator behind the proxy,
    :meth:`sample_event` to deliver an event your vendor accepts, :meth:`registered` to test a
    connector that is not installed through an entry point.
    """

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.conformance]

    service: ClassVar[str]
    """The service id of the connector under test (its manifest's ``service``)."""
    settings: ClassVar[Mapping[str, Any] | None] = None
    """Valid settings for calls into the connector; ``None`` generates them from the schema."""
    url_setting: ClassVar[str] = "baseUrl"
    """The settings key holding the vendor's base URL: the suite puts the fault proxy's URL there."""
    max_examples: ClassVar[int] = 25
    """Hypothesis examples per settings check."""
    read_timeout: ClassVar[float] = 0.5
    """The client read timeout during the timeout check, in seconds; the proxy hangs three times longer."""
    transient_statuses: ClassVar[tuple[int, ...]] = (500, 502, 503, 504)
    permanent_statuses: ClassVar[tuple[int, ...]] = (400, 401, 403, 404, 422)
    retry_after: ClassVar[int] = 7
    """The ``Retry-After`` seconds of the injected 429, which ``TransientError.delay`` must carry."""
    idempotency_key_in_request: ClassVar[bool] = True
    """Whether each attempt must carry the idempotency key; ``False`` for vendors that take none."""
    emulator_class: ClassVar[type[Emulator] | None] = None
    """Your vendor emulator, a subclass of :class:`interlink.testing.emulators.base.Emulator`; every check
    runs against it (through the fault proxy). ``None``: the one Interlink ships for the service, if any."""
    _live_emulator: Emulator | None = None
    sync_records: ClassVar[int] = 120
    """Records the sync checks ask the emulator for (``seed_records``); the memory check uses 10 times more."""

    # -- what an author may override --------------------------------------------------------------

    def registered(self) -> RegisteredConnector:
        """The connector under test, looked up by :attr:`service` in the installed registry."""
        service = getattr(self, "service", None)
        if not service:
            _fail(
                f"{type(self).__name__} names no connector.", 'set the class attribute service = "<your service id>".'
            )
        registry = _registry()
        found = registry.get(str(service))
        if found is None:
            broken = [
                f"{b.entry_point} ({b.distribution} {b.distribution_version}): {b.error}" for b in registry.broken
            ]
            _fail(
                f"no installed connector has the service id '{service}' (installed: "
                f"{', '.join(sorted(registry.connectors)) or 'none'}).",
                "install your package (pip install -e .), check its [project.entry-points.interlink] entry "
                "and that register_connectors registers the class; plugins that failed to load are listed.",
                broken,
            )
        return found

    @contextmanager
    def emulator(self) -> Iterator[str]:
        """Yield the base URL of a simple vendor emulator for the deliver checks.

        Prefer :attr:`emulator_class`, which every check can use. Without either, deliver is checked
        against an endpoint that answers ``200 {"ok": true}`` to everything.
        """
        with EchoSink() as sink:
            yield sink.url

    def vendor_emulator(self) -> Emulator | None:
        """A new instance of :attr:`emulator_class`, else of the emulator Interlink ships for the service."""
        cls = self.emulator_class
        if cls is None:
            try:
                cls = emulator_class(self.registered().service)
            except KeyError:
                return None
        return cls()

    def sample_event(self) -> dict[str, Any]:
        """An event envelope to deliver: the emulator's sample, else one of the first outbound event type."""
        live = getattr(self, "_live_emulator", None)
        if live is not None and (sample := live.sample_event()) is not None:
            return {"payload_ref": new_id("evt"), **sample, "id": new_id("evt")}
        manifest = self.registered().manifest
        outbound = [e.event_type for e in manifest.sync_events if e.direction == "outbound" and "*" not in e.event_type]
        return {
            "id": new_id("evt"),
            "type": outbound[0] if outbound else "conformance.test",
            "occurred_at": "2025-01-01T00:00:00Z",
            "data": {"id": "obj_conformance", "email": "conformance@example.com", "amount": 100, "currency": "USD"},
            "payload_ref": new_id("evt"),
        }

    # -- helpers ----------------------------------------------------------------------------------

    def _hypothesis(self, examples: int | None = None) -> hypothesis_settings:
        return hypothesis_settings(
            max_examples=examples or self.max_examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=(Phase.explicit, Phase.generate, Phase.shrink),
            suppress_health_check=[HealthCheck.too_slow],
        )

    def _require(self, capability: str) -> RegisteredConnector:
        registered = self.registered()
        if capability not in registered.manifest.capabilities:
            pytest.skip(f"the manifest does not declare {capability}")
        if capability not in registered.connector_class.implemented_capabilities():
            pytest.skip(f"{capability} is declared but not implemented (see test_capabilities_match_methods)")
        return registered

    def _settings(self, manifest: Manifest) -> dict[str, Any]:
        if self.settings is None:
            return dict(_example(json.dumps(manifest.raw, sort_keys=True)))
        errors = manifest.validate_settings(dict(self.settings))
        if errors:
            _fail(
                f"the settings given on {type(self).__name__} are invalid for {manifest.service}.",
                "correct them, or set settings = None to let the suite generate them.",
                [f"{e.pointer}: {e.message}" for e in errors],
            )
        return dict(self.settings)

    @contextmanager
    def _upstream(self) -> Iterator[tuple[str, Emulator | None]]:
        """The vendor the proxy forwards to: the author's ``emulator()``, else the vendor emulator, else the sink."""
        if type(self).emulator is not ConnectorSuite.emulator:
            with self.emulator() as url:
                yield url, None
            return
        live = self.vendor_emulator()
        if live is None:
            with self.emulator() as url:
                yield url, None
            return
        with live:
            self._live_emulator = live
            try:
                yield live.url, live
            finally:
                self._live_emulator = None

    @contextmanager
    def _calling(self, capability: str) -> Iterator[tuple[Harness, FaultProxy, Emulator | None]]:
        """A harness for calls into the connector, aimed through the fault proxy at the vendor."""
        registered = self._require(capability)
        manifest = registered.manifest
        props = manifest.settings_schema.get("properties", {})
        if self.url_setting not in props:
            _fail(
                f"url_setting '{self.url_setting}' is not a setting of {manifest.service} "
                f"(its settings: {', '.join(sorted(props)) or 'none'}), so the suite cannot point it at the proxy.",
                "add a base-URL setting (a string with format uri, defaulting to the vendor's API) and set "
                "url_setting on your suite class to its name.",
            )
        base = self._settings(manifest)
        with self._upstream() as (upstream, live), FaultProxy(upstream) as proxy:
            settings = {
                **base,
                **(live.integration_settings() if live is not None else {}),
                self.url_setting: proxy.url,
            }
            errors = manifest.validate_settings(settings)
            if errors:
                _fail(
                    f"settings.{self.url_setting} does not accept the proxy URL {proxy.url}, or the emulator's "
                    "settings are invalid.",
                    "accept any http(s) URL there (format uri, no pattern pinning the vendor's host), and make the "
                    "emulator's integration_settings() valid for the manifest.",
                    [f"{e.pointer}: {e.message}" for e in errors],
                )
            harness = Harness(registered, settings, inbound_key=live.webhook_secret if live is not None else None)
            try:
                with harness.capturing_logs():
                    yield harness, proxy, live
            finally:
                harness.close()

    @contextmanager
    def _delivering(self) -> Iterator[tuple[Harness, FaultProxy]]:
        with self._calling("deliver") as (harness, proxy, _):
            yield harness, proxy

    def _needs(self, live: Emulator | None, hook: str, capability: str) -> Emulator:
        """The live emulator, when it implements ``hook``; else skip, saying how to enable the check."""
        if live is not None and _has(live, hook):
            return live
        pytest.skip(
            f"no vendor emulator with {hook}() for {self.registered().service}: set emulator_class on the suite "
            f"class to an Emulator subclass that implements it, to check {capability}"
        )

    def _no_request_hint(self, proxy: FaultProxy, before: int) -> str:
        if len(proxy.requests) > before:
            return ""
        return (
            f" [the proxy saw no request: does deliver send to the URL in settings.{self.url_setting}? "
            "Set url_setting on the suite class to the setting that holds the base URL]"
        )

    def _expect(self, outcome: Outcome, wanted: str, label: str, proxy: FaultProxy, before: int) -> str | None:
        if outcome.status == wanted:
            return None
        return f"{label}: deliver {outcome.describe()}{self._no_request_hint(proxy, before)}"

    # -- the checks -------------------------------------------------------------------------------

    def test_manifest_is_valid(self) -> None:
        """The manifest satisfies the meta-schema, its settings schema stays in the supported subset,
        and what it declares is complete (an outbound event to deliver, an interval to sync)."""
        manifest = self.registered().manifest
        try:
            Manifest.from_dict(manifest.raw, source=f"of {manifest.service}")
        except ManifestError as exc:
            _fail(
                f"the manifest of {manifest.service} is invalid.",
                "correct each field named (CONTRIBUTING.md, 'The manifest', lists what is allowed).",
                [f"{e.pointer or '/'}: {e.message}" for e in exc.errors],
            )
        problems = []
        outbound = [e for e in manifest.sync_events if e.direction == "outbound"]
        if "deliver" in manifest.capabilities and not (outbound or manifest.accepts_any_event):
            problems.append(
                "it declares deliver but no sync_events with direction 'outbound': list the event types it "
                "delivers, or set accepts_any_event"
            )
        if "sync" in manifest.capabilities and manifest.default_sync_interval is None:
            problems.append("it declares sync but no default_sync_interval: set one (seconds, at least 60)")
        if problems:
            _fail(f"the manifest of {manifest.service} is incomplete.", "complete it as said above.", problems)

    def test_capabilities_match_methods(self) -> None:
        """The capabilities the manifest declares are exactly the methods the class implements."""
        registered = self.registered()
        cls, declared = registered.connector_class, registered.manifest.capabilities
        implemented = cls.implemented_capabilities()
        problems = [
            f"{name} is declared in the manifest's capabilities but {cls.__name__} does not implement {name}(): "
            f"implement it, or remove '{name}' from capabilities"
            for name in sorted(declared - implemented)
        ] + [
            f"{cls.__name__} implements {name}() but the manifest does not declare it, so the core never calls it: "
            f"add '{name}' to capabilities, or remove the method"
            for name in sorted(implemented - declared)
        ]
        if problems:
            _fail(
                f"the capabilities of {registered.service} do not match its class.",
                "make capabilities list exactly the methods the class overrides.",
                problems,
            )

    def test_generated_settings_are_accepted(self) -> None:
        """Settings drawn from the schema (hypothesis) validate: every rule of the schema can be met."""
        manifest = self.registered().manifest
        config = self._hypothesis()
        first = hypothesis_settings(config, phases=(Phase.generate,))
        for key, prop in manifest.settings_schema.get("properties", {}).items():
            try:
                find(property_strategy(prop), lambda _: True, settings=first)
            except HypothesisException:
                _fail(
                    f"no value the suite can generate satisfies setting '{key}'.",
                    "check that its rules can be met together (pattern vs minLength/maxLength, enum vs type, "
                    "minimum <= maximum, format and pattern agreeing).",
                )

        @config
        @given(valid_settings(manifest))
        def accepted(settings: dict[str, Any]) -> None:
            errors = manifest.validate_settings(settings, pointer="")
            assert not errors, (
                f"settings generated from the schema were rejected: {settings!r}\n"
                + "\n".join(f"  - {e.pointer}: {e.message}" for e in errors)
                + "\nHow to fix: simplify the rules of the settings named, so that they cannot contradict each other."
            )

        _run_examples(accepted)

    def test_mutated_settings_are_rejected_with_pointers(self) -> None:
        """Settings with one rule broken (a required key dropped, a wrong type, an unknown key, a broken
        pattern, format, bound or enum) are rejected, with an error pointing at the setting."""
        manifest = self.registered().manifest
        for mutation in settings_mutations(manifest):
            self._check_mutation(manifest, mutation)

    def _check_mutation(self, manifest: Manifest, mutation: Mutation) -> None:
        if mutation.rule == "additionalProperties":
            fix = 'add "additionalProperties": false to the settings schema, so a misspelt setting is reported'
        else:
            fix = f"check the '{mutation.rule}' rule of setting '{mutation.key}' in the settings schema"

        @self._hypothesis(max(2, self.max_examples // 5))
        @given(mutated_settings(manifest, mutation))
        def rejected(case: tuple[dict[str, Any], str]) -> None:
            settings, pointer = case
            errors = manifest.validate_settings(settings, pointer="")
            assert errors, f"settings with {mutation.description} were accepted: {settings!r}\nHow to fix: {fix}."
            hits = [e for e in errors if e.pointer == pointer or e.pointer.startswith(pointer + "/")]
            assert hits, (
                f"settings with {mutation.description} were rejected, but no error points at {pointer} "
                f"(errors at: {', '.join(e.pointer for e in errors)}): {settings!r}\nHow to fix: {fix}."
            )

        _run_examples(rejected)

    def test_deliver_succeeds_against_the_emulator(self) -> None:
        """With the emulator answering, deliver sends a request through the base URL and returns normally."""
        with self._delivering() as (harness, proxy):
            outcome = harness.deliver(self.sample_event(), new_id("evt"))
            if outcome.status != "succeeded" or not proxy.requests:
                _fail(
                    f"deliver did not succeed against the emulator at {proxy.upstream}.",
                    "make deliver send the event to the base URL in the settings and return normally on 2xx; "
                    "if your vendor needs particular answers, override emulator() with your own emulator, and "
                    "sample_event() with an event it accepts.",
                    [f"deliver {outcome.describe()}{self._no_request_hint(proxy, 0)}"],
                )

    def test_deliver_5xx_is_transient(self) -> None:
        """A 5xx answer makes deliver raise TransientError (or let httpx's transport error through)."""
        with self._delivering() as (harness, proxy):
            problems = []
            for status in self.transient_statuses:
                proxy.clear_faults()
                proxy.fail_all(Fault.respond(status))
                before = len(proxy.requests)
                outcome = harness.deliver(self.sample_event(), new_id("evt"))
                problems.append(self._expect(outcome, "transient", f"HTTP {status}", proxy, before))
            self._report(
                problems,
                "a 5xx answer from the vendor is not classified as transient, so the event fails for good "
                "although the vendor may answer later.",
                "call interlink.http.raise_for_status(response), which raises TransientError for 5xx, 429, 408 "
                "and 425, or raise TransientError yourself.",
            )

    def test_deliver_timeout_is_transient(self) -> None:
        """A vendor that does not answer within the read timeout makes deliver fail transiently."""
        timeout = httpx.Timeout(self.read_timeout * 4, read=self.read_timeout)
        with self._delivering() as (harness, proxy):
            proxy.fail_all(Fault.hang(self.read_timeout * 3))
            outcome = harness.deliver(self.sample_event(), new_id("evt"), timeout=timeout)
            label = f"no answer within the {self.read_timeout:g} s read timeout"
            self._report(
                [self._expect(outcome, "transient", label, proxy, 0)],
                "a timeout is not classified as transient.",
                "let httpx.TimeoutException propagate (the core retries transport errors), or raise "
                "TransientError from it; do not retry or sleep inside deliver, and keep ctx.http's timeouts.",
            )

    def test_deliver_429_is_transient_with_retry_after(self) -> None:
        """A 429 with ``Retry-After`` makes deliver raise TransientError whose delay is that many seconds."""
        with self._delivering() as (harness, proxy):
            proxy.fail_all(Fault.respond(429, retry_after=self.retry_after))
            outcome = harness.deliver(self.sample_event(), new_id("evt"))
            problem = self._expect(outcome, "transient", f"HTTP 429, Retry-After: {self.retry_after}", proxy, 0)
            if problem is None and (outcome.delay is None or abs(outcome.delay - self.retry_after) > 1):
                problem = (
                    f"HTTP 429, Retry-After: {self.retry_after}: deliver {outcome.describe()}, "
                    f"but its delay should be {self.retry_after}"
                )
            self._report(
                [problem],
                "a rate-limited delivery does not honour the vendor's Retry-After.",
                "raise TransientError(message, delay=interlink.http.parse_retry_after(response.headers.get("
                "'Retry-After'))); interlink.http.raise_for_status does this for you.",
            )

    def test_deliver_4xx_is_permanent(self) -> None:
        """A 4xx answer (other than 408, 425, 429) makes deliver raise PermanentError: retrying cannot help."""
        with self._delivering() as (harness, proxy):
            problems = []
            for status in self.permanent_statuses:
                proxy.clear_faults()
                proxy.fail_all(Fault.respond(status))
                before = len(proxy.requests)
                outcome = harness.deliver(self.sample_event(), new_id("evt"))
                problems.append(self._expect(outcome, "permanent", f"HTTP {status}", proxy, before))
            self._report(
                problems,
                "a 4xx answer is not classified as permanent, so the event is retried although it cannot succeed "
                "(or is marked succeeded although the vendor refused it).",
                "call interlink.http.raise_for_status(response, setting='<credential setting>'), which raises "
                "PermanentError for 4xx and names the setting for 401/403, or raise PermanentError yourself.",
            )

    def test_deliver_sends_the_same_idempotency_key_on_every_attempt(self) -> None:
        """Three attempts of one event (the first two answered 503) carry the same idempotency key."""
        with self._delivering() as (harness, proxy):
            event = self.sample_event()
            key = str(event["id"])
            proxy.fail_next(2, Fault.respond(503))
            attempts: list[list[SeenRequest]] = []
            for _ in range(3):
                before = len(proxy.requests)
                harness.deliver(event, key)
                attempts.append(proxy.requests[before:])
            problems = []
            if not any(attempts):
                problems.append(f"no attempt sent a request{self._no_request_hint(proxy, 0)}")
            if self.idempotency_key_in_request:
                for number, requests in enumerate(attempts, 1):
                    if requests and not any(key in r.text() for r in requests):
                        problems.append(f"attempt {number} sent no request carrying the idempotency key {key}")
            first = [_id_values(r) for r in attempts[0]]
            for number, requests in enumerate(attempts[1:], 2):
                for index, request in enumerate(requests[: len(first)]):
                    for name, value in _id_values(request).items():
                        if name in first[index] and first[index][name] != value:
                            problems.append(
                                f"{name} was {first[index][name]!r} on attempt 1 and {value!r} on attempt {number}"
                            )
            self._report(
                problems,
                "retries of one event do not carry one idempotency key, so a vendor may record the event twice.",
                "send the idempotency_key argument of deliver (the same on every attempt) where the vendor takes "
                "one (an Idempotency-Key header, a unique_id field); never generate a new key inside deliver. "
                "If your vendor takes none, set idempotency_key_in_request = False on the suite class.",
            )

    def test_deliver_secrets_never_leak(self) -> None:
        """Secret setting values never appear in the communication log, exception messages or log records,
        whether the delivery succeeds, fails or times out."""
        with self._delivering() as (harness, proxy):
            scenarios = [None, Fault.respond(500), Fault.respond(429, retry_after=1), Fault.respond(401)]
            scenarios += [Fault.respond(400), Fault.reset()]
            for fault in scenarios:
                proxy.clear_faults()
                if fault is not None:
                    proxy.fail_all(fault)
                harness.deliver(self.sample_event(), new_id("evt"))
            places: list[tuple[str, str]] = [
                (f"communication log of {name}", text) for name, text in harness.exchanges_text()
            ]
            places += [(f"the message of {type(o.exception).__name__}", str(o.exception)) for o in harness.outcomes]
            places += [
                (f"a log record of logger '{r.name}' ({r.pathname}:{r.lineno})", record_text(r)) for r in harness.logs
            ]
            problems = sorted(
                {
                    f"the value of secret '{name}' appears in {where}"
                    for name, value in harness.secrets.items()
                    if len(value) >= 4
                    for where, text in places
                    if value in text
                }
            )
            self._report(
                problems,
                "a secret leaks into what the core stores or shows.",
                "log only through ctx.logger (it masks secrets), never log settings or headers, keep secrets out of "
                "exception messages, and send credentials in headers rather than URLs.",
            )

    def test_every_request_has_a_timeout(self) -> None:
        """Every request deliver sends has connect, read, write and pool timeouts, and goes through httpx."""
        with self._delivering() as (harness, proxy), observe_requests() as sent:
            harness.deliver(self.sample_event(), new_id("evt"))
        problems = [
            f"{r.method} {r.url} had no {', '.join(r.missing_timeouts)} timeout (sent from {r.origin})"
            for r in sent
            if r.missing_timeouts
        ]
        if len(proxy.requests) > len(sent):
            problems.append(
                f"{len(proxy.requests) - len(sent)} request(s) reached the vendor without an httpx client "
                "(urllib, requests, raw sockets?), so their timeout cannot be checked"
            )
        self._report(
            problems,
            "a request can hang a worker forever.",
            "send every request through ctx.http (it has timeouts); never build your own client with "
            "timeout=None or pass timeout=None per request.",
        )

    # -- check ------------------------------------------------------------------------------------

    def test_check_succeeds_against_the_emulator(self) -> None:
        """With the emulator's credentials, ``check`` returns ``CheckResult(ok=True)``."""
        with self._calling("check") as (harness, proxy, live):
            self._needs(live, "integration_settings", "check against the vendor")
            outcome = harness.check()
            if outcome.status != "succeeded":
                _fail(
                    "check failed with the credentials the emulator accepts.",
                    "make check one cheap authenticated call to the base URL in the settings.",
                    [f"check {outcome.describe()}{self._no_request_hint(proxy, 0)}"],
                )

    def test_check_with_bad_credentials_names_the_setting(self) -> None:
        """Refused credentials (the emulator's real refusal, and an injected 401 and 403) make ``check`` raise
        PermanentError naming the setting to fix."""
        with self._calling("check") as (harness, proxy, live):
            manifest = harness.registered.manifest
            secrets = sorted(k for k in manifest.secret_keys if harness.settings.get(k))
            problems: list[str | None] = []
            if live is not None and secrets:
                wrong = {**harness.settings, **{k: _wrong(str(harness.settings[k])) for k in secrets}}
                problems.append(self._names_setting(harness.check(wrong), "wrong credentials", secrets))
            for status in (401, 403):
                proxy.clear_faults()
                proxy.fail_all(Fault.respond(status))
                problems.append(self._names_setting(harness.check(), f"HTTP {status}", secrets))
            self._report(
                problems,
                "refused credentials do not tell the user which setting to fix.",
                "raise PermanentError(message, setting='<the credential setting>') for 401/403; "
                "interlink.http.raise_for_status(response, setting='apiKey') does it for you.",
            )

    def _names_setting(self, outcome: Outcome, label: str, candidates: Sequence[str]) -> str | None:
        if outcome.status != "permanent":
            return f"{label}: check {outcome.describe()}, but it should raise PermanentError"
        setting = getattr(outcome.exception, "setting", None)
        props = self.registered().manifest.settings_schema.get("properties", {})
        if setting in props or any(c in (outcome.error or "") for c in candidates):
            return None
        return f"{label}: check {outcome.describe()}, but names no setting (setting={setting!r})"

    # -- sync -------------------------------------------------------------------------------------

    @contextmanager
    def _syncing(self) -> Iterator[tuple[Harness, FaultProxy, Emulator]]:
        with self._calling("sync") as (harness, proxy, live):
            emulator = self._needs(live, "seed_records", "sync")
            emulator.seed_records(self.sync_records)
            yield harness, proxy, emulator

    def _full_run(self, harness: Harness, proxy: FaultProxy) -> SyncRun:
        run = harness.sync({})
        if run.outcome.status != "succeeded":
            _fail(
                "sync did not run to its end against the emulator.",
                "read every page from the base URL in the settings and return when there is no more.",
                [f"sync {run.outcome.describe()}{self._no_request_hint(proxy, 0)}"],
            )
        return run

    def test_sync_reads_every_record_once(self) -> None:
        """A first run yields every record the emulator holds, each with an ``id``, none twice."""
        with self._syncing() as (harness, proxy, _):
            run = self._full_run(harness, proxy)
            ids = run.ids()
            problems = [f"a record has no 'id': {r!r:.200}" for r in run.records if not _has_id(r)][:3]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                problems.append(f"{len(dupes)} id(s) yielded twice in one run, e.g. {dupes[:3]}")
            if len(set(ids)) != self.sync_records:
                problems.append(f"the emulator holds {self.sync_records} records; sync yielded {len(set(ids))}")
            if not run.checkpoints:
                problems.append("sync yielded no checkpoint, so a run cut short starts again from the beginning")
            self._report(
                problems,
                "a sync does not read each record exactly once.",
                "page to the end (follow the vendor's cursor until it says there is no more), give every record "
                "the vendor's stable id, and yield {'checkpoint': state} after each page.",
            )

    def test_sync_resumes_from_every_checkpoint(self) -> None:
        """Interrupted after any checkpoint (a killed worker) and resumed from its state, the records saved before
        it and the records of the resumed run together are exactly one full run: nothing lost."""
        with self._syncing() as (harness, proxy, _):
            full = self._full_run(harness, proxy)
            everything = set(full.ids())
            problems = []
            for number in _spread(len(full.checkpoints), 8):
                saved_at, state = full.checkpoints[number - 1]
                if not _is_json(state):
                    continue  # test_sync_state_survives_a_json_round_trip reports it
                resumed = harness.sync(state)
                if resumed.outcome.status != "succeeded":
                    problems.append(f"resumed from checkpoint {number}: sync {resumed.outcome.describe()}")
                    continue
                union = set(full.ids(saved_at)) | set(resumed.ids())
                missing, extra = sorted(everything - union), sorted(union - everything)
                if missing:
                    problems.append(
                        f"resumed from checkpoint {number} (after {saved_at} records): {len(missing)} record(s) "
                        f"never read, e.g. {missing[:3]}; the state was {json.dumps(state)[:200]}"
                    )
                if extra:
                    problems.append(f"resumed from checkpoint {number}: records no full run reads, e.g. {extra[:3]}")
            self._report(
                problems,
                "a sync cut short loses records when it resumes.",
                "checkpoint a state that covers exactly the records yielded before it (the cursor after the last "
                "page read, not the next one requested); the core saves both together.",
            )

    def test_sync_state_survives_a_json_round_trip(self) -> None:
        """Every checkpoint's state is a JSON object that reads back equal (the core stores it as JSON)."""
        with self._syncing() as (harness, proxy, _):
            run = self._full_run(harness, proxy)
            problems = []
            for number, (_, state) in enumerate(run.checkpoints, 1):
                try:
                    same = isinstance(state, dict) and json.loads(json.dumps(state)) == state
                except (TypeError, ValueError) as exc:
                    problems.append(f"checkpoint {number}: the state is not JSON ({exc})")
                    continue
                if not same:
                    problems.append(f"checkpoint {number}: {state!r:.200} does not read back equal from JSON")
            self._report(
                problems[:5],
                "a sync state does not survive being stored.",
                "keep the state a dict of strings, numbers, booleans, lists and dicts (ISO 8601 strings for times, "
                "no tuples, datetimes or sets).",
            )

    def test_sync_faults_are_classified(self) -> None:
        """Mid-sync, a 5xx and a timeout are transient, a 429 is transient with its ``Retry-After``, and a 401
        is permanent naming the setting."""
        with self._syncing() as (harness, proxy, _):
            problems = []
            cases = [
                (Fault.respond(503), "transient", "HTTP 503"),
                (Fault.respond(429, retry_after=self.retry_after), "transient", "HTTP 429"),
                (Fault.respond(401), "permanent", "HTTP 401"),
                (Fault.reset(), "transient", "a reset connection"),
            ]
            for fault, wanted, label in cases:
                proxy.clear_faults()
                proxy.fail_all(fault)
                run = harness.sync({})
                if run.outcome.status != wanted:
                    problems.append(f"{label}: sync {run.outcome.describe()}, but it should be {wanted}")
                elif label == "HTTP 429" and (
                    run.outcome.delay is None or abs(run.outcome.delay - self.retry_after) > 1
                ):
                    problems.append(f"HTTP 429: the delay is {run.outcome.delay}, not the {self.retry_after} asked")
                elif label == "HTTP 401" and not getattr(run.outcome.exception, "setting", None):
                    problems.append("HTTP 401: the PermanentError names no setting")
            self._report(
                problems,
                "a failing vendor makes sync fail the wrong way (a retry that cannot help, or none that could).",
                "let interlink.http.raise_for_status(response, setting='<credential setting>') classify each "
                "answer, and let transport errors propagate; never catch and swallow them inside sync.",
            )

    def test_sync_memory_does_not_grow_with_records(self) -> None:
        """The connector's peak memory while syncing ten times more records stays about the same: it streams
        pages instead of collecting them."""
        with self._syncing() as (harness, _, emulator):
            small = _peak(lambda: harness.sync({}, keep_records=False))
            emulator.seed_records(self.sync_records * 9)
            large = _peak(lambda: harness.sync({}, keep_records=False))
            if large > small * 2 + 512 * 1024:
                _fail(
                    f"syncing {self.sync_records * 10} records peaked at {large / 1024:.0f} KiB, against "
                    f"{small / 1024:.0f} KiB for {self.sync_records}: memory grows with the number of records.",
                    "yield each record as its page arrives and keep no list of everything read; keep only the "
                    "cursor in the state.",
                )

    # -- webhooks ---------------------------------------------------------------------------------

    @contextmanager
    def _receiving(self) -> Iterator[tuple[Harness, Emulator]]:
        with self._calling("handle_webhook") as (harness, _, live):
            emulator = self._needs(live, "sample_webhook", "handle_webhook")
            if harness.registered.connector_class.verify_webhook is Connector.verify_webhook:
                _fail(
                    f"{harness.registered.connector_class.__name__} declares handle_webhook but does not override "
                    "verify_webhook, so every inbound request is refused.",
                    "implement verify_webhook: check the vendor's signature or authorization value.",
                )
            yield harness, emulator

    def _request(self, body: bytes, headers: Mapping[str, str], received_at: datetime | None = None) -> WebhookRequest:
        lowered = {k.lower(): v for k, v in headers.items()}
        return WebhookRequest("POST", "/v1/hooks/int_conformance", lowered, body, received_at or datetime.now(UTC))

    def _refused(self, harness: Harness, request: WebhookRequest, label: str) -> str | None:
        outcome, _ = harness.verify(request)
        if outcome.status == "permanent":
            return None
        return f"{label}: verify_webhook {outcome.describe()}, but it should raise PermanentError (answered 401)"

    def test_webhook_genuine_request_is_accepted(self) -> None:
        """A genuine request is accepted by ``verify_webhook``, and ``handle_webhook`` parses it into envelopes,
        each with the vendor's id, the same ids every time (a vendor's retry is recorded once)."""
        with self._receiving() as (harness, emulator):
            request = self._request(*emulator.webhook_request(emulator.sample_webhook()))
            outcome, _ = harness.verify(request)
            problems = []
            if outcome.status != "succeeded":
                problems.append(f"verify_webhook {outcome.describe()} for a genuine request")
            else:
                first, result = harness.handle(request)
                _, repeat = harness.handle(request)
                if first.status != "succeeded" or result is None:
                    problems.append(f"handle_webhook {first.describe()}")
                elif not result.events:
                    problems.append("handle_webhook returned no event for a webhook carrying one")
                else:
                    problems += [
                        f"an event is not an inbound envelope (interlink.envelope.envelope): {e!r:.200}"
                        for e in result.events
                        if not is_envelope(e)
                    ]
                    ids = [str(e.get("id")) for e in result.events]
                    if repeat is None or [str(e.get("id")) for e in repeat.events] != ids:
                        problems.append("the same request parsed twice gave different ids, so retries are duplicated")
            self._report(
                problems,
                "a genuine webhook is not accepted and parsed.",
                "verify with the secret in the settings, against request.received_at; return envelopes carrying the "
                "vendor's event id.",
            )

    def test_webhook_tampered_body_is_refused(self) -> None:
        """A genuine request whose body was changed in transit is refused."""
        with self._receiving() as (harness, emulator):
            if not emulator.webhook_signed:
                pytest.skip("the vendor does not sign the body (emulator webhook_signed = False)")
            tampered = emulator.tampered_webhook(*emulator.webhook_request(emulator.sample_webhook()))
            problem = self._refused(harness, self._request(*tampered), "tampered body")
            self._report(
                [problem],
                "a webhook whose body was changed is accepted.",
                "compute the signature over the raw request.body, exactly as received, and compare it with "
                "hmac.compare_digest.",
            )

    def test_webhook_wrong_secret_is_refused(self) -> None:
        """A request authenticated with another secret than the integration's is refused."""
        with self._receiving() as (harness, emulator):
            wrong = emulator.webhook_request(emulator.sample_webhook(), secret=_wrong(emulator.webhook_secret))
            problem = self._refused(harness, self._request(*wrong), "another secret")
            self._report(
                [problem],
                "a webhook signed with the wrong secret is accepted.",
                "verify with the secret from ctx.settings, and refuse when it does not match.",
            )

    def test_webhook_missing_signature_is_refused(self) -> None:
        """A request without the vendor's authentication headers is refused."""
        with self._receiving() as (harness, emulator):
            bare = emulator.unsigned_webhook(emulator.sample_webhook())
            problem = self._refused(harness, self._request(*bare), "no signature or authorization header")
            self._report(
                [problem],
                "a webhook without authentication is accepted.",
                "refuse a request that lacks the signature (or authorization) header.",
            )

    def test_webhook_stale_replay_is_refused(self) -> None:
        """A genuine request replayed an hour after it was signed is refused; one signed a minute ago is not."""
        with self._receiving() as (harness, emulator):
            if not emulator.webhook_timestamped:
                pytest.skip("the vendor's webhooks carry no signed timestamp (emulator webhook_timestamped = False)")
            body = emulator.sample_webhook()
            now = datetime.now(UTC)
            stale = emulator.webhook_request(body, sent_at=int(now.timestamp()) - 3600)
            recent = emulator.webhook_request(body, sent_at=int(now.timestamp()) - 60)
            problems = [self._refused(harness, self._request(*stale, now), "signed an hour before it arrived")]
            outcome, _ = harness.verify(self._request(*recent, now))
            if outcome.status != "succeeded":
                problems.append(f"signed a minute before it arrived: verify_webhook {outcome.describe()}")
            self._report(
                problems,
                "the timestamp of a webhook is not checked against when it arrived.",
                "refuse a signed timestamp older than the vendor's tolerance (Stripe: 300 s) before "
                "request.received_at, and accept one within it.",
            )

    def test_secrets_never_leak_from_check_sync_or_webhooks(self) -> None:
        """Secret setting values never appear in the communication log, exception messages, log records,
        sync records or parsed webhook events, whatever check, sync and the webhook methods meet."""
        registered = self.registered()
        capabilities = registered.manifest.capabilities & registered.connector_class.implemented_capabilities()
        if not capabilities & {"check", "sync", "handle_webhook"}:
            pytest.skip("the connector has no check, sync or handle_webhook")
        capability = next(c for c in ("check", "sync", "handle_webhook") if c in capabilities)
        with self._calling(capability) as (harness, proxy, live):
            results: list[tuple[str, str]] = []
            for fault in (None, Fault.respond(401), Fault.respond(500), Fault.reset()):
                proxy.clear_faults()
                if fault is not None:
                    proxy.fail_all(fault)
                if "check" in capabilities:
                    harness.check()
                if "sync" in capabilities and live is not None and _has(live, "seed_records"):
                    if fault is None:
                        live.seed_records(self.sync_records)
                    run = harness.sync({})
                    results += [("a sync record", json.dumps(r, default=str)) for r in run.records]
                    results += [("a sync state", json.dumps(c, default=str)) for _, c in run.checkpoints]
            if "handle_webhook" in capabilities and live is not None and _has(live, "sample_webhook"):
                body = live.sample_webhook()
                for sent in (
                    live.webhook_request(body),
                    live.unsigned_webhook(body),
                    live.webhook_request(body, secret="x" * 20),
                ):
                    request = self._request(*sent)
                    harness.verify(request)
                    _, result = harness.handle(request)
                    if result is not None:
                        results += [("a webhook event", json.dumps(e, default=str)) for e in result.events]
            problems = _leaks(harness, results)
            self._report(
                problems,
                "a secret leaks into what the core stores or shows.",
                "log only through ctx.logger, keep secrets out of exception messages, records and states, and send "
                "credentials in headers rather than URLs.",
            )

    def _report(self, problems: Sequence[str | None], what: str, fix: str) -> None:
        found = [p for p in problems if p]
        if found:
            _fail(f"{self.registered().service}: {what}", fix, found)


def _wrong(value: str) -> str:
    """Another credential of the same shape (prefix and length kept), so only the vendor can tell."""
    keep = max(0, len(value) - 6)
    return value[:keep] + "".join("x" if c != "x" else "y" for c in value[keep:])


def _has_id(record: Any) -> bool:
    return isinstance(record, Mapping) and isinstance(record.get("id"), str | int) and str(record.get("id")) != ""


def _has(emulator: Emulator, hook: str) -> bool:
    return getattr(type(emulator), hook) is not getattr(Emulator, hook)


def _spread(count: int, most: int) -> list[int]:
    """Up to ``most`` checkpoint numbers (1-based) spread over ``count``, always the first and the last."""
    if count <= most:
        return list(range(1, count + 1))
    step = (count - 1) / (most - 1)
    return sorted({1 + round(i * step) for i in range(most)})


def _peak(call: Callable[[], object]) -> int:
    """The peak of memory allocated while ``call`` runs, in bytes."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def _leaks(harness: Harness, results: Sequence[tuple[str, str]]) -> list[str]:
    places: list[tuple[str, str]] = [(f"communication log of {name}", text) for name, text in harness.exchanges_text()]
    places += [(f"the message of {type(o.exception).__name__}", str(o.exception)) for o in harness.outcomes]
    places += [(f"a log record of logger '{r.name}'", record_text(r)) for r in harness.logs]
    places += list(results)
    return sorted(
        {
            f"the value of secret '{name}' appears in {where}"
            for name, value in harness.secrets.items()
            if len(value) >= 4
            for where, text in places
            if value in text
        }
    )


def _is_json(value: Any) -> bool:
    try:
        return isinstance(value, dict) and json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        return False
