"""``ConnectorSuite``: the conformance suite a connector author subclasses in their own tests.

Each check is its own pytest test with a stable name, runs offline against a vendor emulator with
the :class:`~interlink.testing.proxy.FaultProxy` in between, and fails with a message that says what is
wrong and how to fix it. Checks of a capability the manifest does not declare are skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, ClassVar, NoReturn

import httpx
import pytest
from hypothesis import HealthCheck, Phase, find, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import HypothesisException

from interlink.ids import new_id
from interlink.manifest import Manifest, ManifestError
from interlink.registry import ConnectorRegistry, RegisteredConnector, load_registry
from interlink.testing._harness import Harness, Outcome, observe_requests, record_text
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
        """Yield the base URL of a vendor emulator; the default answers ``200 {"ok": true}`` to everything."""
        with EchoSink() as sink:
            yield sink.url

    def sample_event(self) -> dict[str, Any]:
        """An event envelope to deliver, of the first outbound event type of the manifest."""
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
    def _delivering(self) -> Iterator[tuple[Harness, FaultProxy]]:
        registered = self._require("deliver")
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
        with self.emulator() as upstream, FaultProxy(upstream) as proxy:
            settings = {**base, self.url_setting: proxy.url}
            errors = manifest.validate_settings(settings)
            if errors:
                _fail(
                    f"settings.{self.url_setting} does not accept the proxy URL {proxy.url}.",
                    "accept any http(s) URL there (format uri, no pattern pinning the vendor's host).",
                    [f"{e.pointer}: {e.message}" for e in errors],
                )
            harness = Harness(registered, settings)
            try:
                with harness.capturing_logs():
                    yield harness, proxy
            finally:
                harness.close()

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

    def _report(self, problems: Sequence[str | None], what: str, fix: str) -> None:
        found = [p for p in problems if p]
        if found:
            _fail(f"{self.registered().service}: {what}", fix, found)
