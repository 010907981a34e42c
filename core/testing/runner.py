"""Running the conformance suite outside pytest, for ``interlink conformance SERVICE_OR_PACKAGE...``.

Each named service, or each service registered by a named distribution, gets a :class:`ConnectorSuite`
subclass built on the fly, and every check of :data:`~interlink.testing.suite.CHECKS` is called on a
fresh instance of it, as pytest would call the test method: ``pytest.fail`` is a failure (its message
says what is wrong and how to fix it), ``pytest.skip`` a skip with its reason, and any other exception
a failure too (the check could not run). A plugin of a named distribution that failed to load is a
failure of the pseudo-check :data:`LOAD_CHECK`.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import re
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from interlink.manifest import Manifest
from interlink.registry import BrokenPlugin, ConnectorRegistry, RegisteredConnector, load_registry
from interlink.testing.suite import CHECKS, ConnectorSuite

__all__ = [
    "LOAD_CHECK",
    "CheckOutcome",
    "UnknownTarget",
    "default_url_setting",
    "format_report",
    "resolve",
    "resolve_checks",
    "run",
    "run_check",
    "suite_class",
    "summary",
]

LOAD_CHECK = "plugin_loads"
"""The pseudo-check reported for a plugin of a named distribution that the registry skipped."""

RESULTS = ("pass", "fail", "skip")
_DETAIL_WIDTH = 100


class UnknownTarget(LookupError):
    """A name on the command line is neither an installed service id nor a distribution with connectors."""


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one check on one connector: ``pass``, ``fail`` (with what is wrong and how to fix
    it) or ``skip`` (with the reason)."""

    service: str
    distribution: str
    check: str
    result: str
    message: str = ""
    seconds: float = 0.0

    @property
    def detail(self) -> str:
        """The first line of the message."""
        return self.message.strip().splitlines()[0] if self.message.strip() else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "distribution": self.distribution,
            "check": self.check,
            "result": self.result,
            "detail": self.detail,
            "message": self.message,
            "seconds": round(self.seconds, 3),
        }


Target = RegisteredConnector | BrokenPlugin


def _normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Interlink_Acme`` == ``interlink-acme``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve(names: Iterable[str], registry: ConnectorRegistry | None = None) -> list[Target]:
    """The connectors named: a service id, or a distribution (every service it registers, and every
    plugin of it that failed to load). Raises :class:`UnknownTarget` naming what is installed."""
    registry = registry if registry is not None else load_registry()
    found: dict[str, Target] = {}
    unknown: list[str] = []
    for name in names:
        if name in registry.connectors:
            found.setdefault(f"service:{name}", registry.connectors[name])
            continue
        wanted = _normalize(name)
        loaded = sorted(
            (r for r in registry.connectors.values() if _normalize(r.distribution) == wanted), key=lambda r: r.service
        )
        broken = [
            b for b in registry.broken if _normalize(b.distribution) == wanted or (not loaded and b.entry_point == name)
        ]
        if not loaded and not broken:
            unknown.append(name)
        for registered in loaded:
            found.setdefault(f"service:{registered.service}", registered)
        for plugin in broken:
            found.setdefault(f"broken:{plugin.entry_point}:{plugin.error}", plugin)
    if unknown:
        raise UnknownTarget(_unknown_message(unknown, registry))
    return list(found.values())


def _unknown_message(unknown: Sequence[str], registry: ConnectorRegistry) -> str:
    quoted = ", ".join(f"'{n}'" for n in unknown)
    services = ", ".join(sorted(registry.connectors)) or "none"
    distributions = ", ".join(sorted({r.distribution for r in registry.connectors.values()})) or "none"
    lines = [
        f"no installed connector has the service id or distribution name {quoted}.",
        f"Installed services: {services}.",
        f"Distributions with connectors: {distributions}.",
    ]
    if registry.broken:
        lines.append("Plugins that failed to load:")
        lines += [
            f"  - {b.entry_point} ({b.distribution} {b.distribution_version}): {b.error}" for b in registry.broken
        ]
    lines.append(
        "Install your package (pip install -e .) and check its [project.entry-points.interlink] entry "
        "(`interlink connectors list` shows what loaded)."
    )
    return "\n".join(lines)


def resolve_checks(names: Iterable[str]) -> list[str]:
    """The checks named (with or without the ``test_`` prefix), in suite order; all of them if none.
    Raises ``ValueError`` naming the valid checks."""
    given = {n: n if n.startswith("test_") else f"test_{n}" for n in names}
    unknown = sorted(n for n, check in given.items() if check not in CHECKS)
    if unknown:
        raise ValueError(f"unknown check {', '.join(unknown)}; the checks are: {', '.join(CHECKS)}")
    wanted = set(given.values())
    return [c for c in CHECKS if not wanted or c in wanted]


def default_url_setting(manifest: Manifest) -> str:
    """The settings key the suite points at the fault proxy, read from the manifest.

    ``baseUrl`` where the connector has one (the convention for every vendor connector), else its only
    URL-formatted setting (``url`` of ``custom``, ``webhookUrl`` of a Slack connector), else ``baseUrl``.
    """
    properties = manifest.settings_schema.get("properties", {})
    if "baseUrl" in properties:
        return "baseUrl"
    urls = [key for key, prop in properties.items() if prop.get("format") == "uri"]
    return urls[0] if len(urls) == 1 else "baseUrl"


def suite_class(target: RegisteredConnector, url_setting: str | None = None) -> type[ConnectorSuite]:
    """A :class:`ConnectorSuite` subclass for ``target``, as an author would write it in a test module."""
    service_id = target.service
    url_key = url_setting or default_url_setting(target.manifest)

    class Suite(ConnectorSuite):
        service = service_id
        url_setting = url_key

        def registered(self) -> RegisteredConnector:
            return target

    Suite.__name__ = Suite.__qualname__ = f"Test{''.join(p.title() for p in re.split(r'[^A-Za-z0-9]+', service_id))}"
    return Suite


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Keep what a check prints (hypothesis' reports, stray prints) and the log lines the existing root
    handlers would write out of the report; the suite's own log capture still sees every record."""
    root = logging.getLogger()
    handlers = [(h, h.level) for h in root.handlers]
    out = io.StringIO()
    for handler, _ in handlers:
        handler.setLevel(logging.CRITICAL + 1)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            yield out
    finally:
        for handler, level in handlers:
            handler.setLevel(level)


def run_check(suite: type[ConnectorSuite], check: str, distribution: str = "") -> CheckOutcome:
    """Call one check on a fresh instance of ``suite``, the way pytest calls a test method."""
    service = str(getattr(suite, "service", "?"))
    started = time.monotonic()
    result, message = "pass", ""
    with _quiet() as out:
        try:
            method = getattr(suite(), check)
            needs = [p for p in inspect.signature(method).parameters.values() if p.default is p.empty]
            if needs:
                names = ", ".join(p.name for p in needs)
                raise pytest.fail.Exception(
                    f"{check} needs the pytest fixtures {names}, which the command line cannot provide.\n"
                    f"How to fix: run it with pytest, in a test class subclassing ConnectorSuite.",
                    pytrace=False,
                )
            method()
        except pytest.skip.Exception as exc:
            result, message = "skip", str(exc.msg)
        except pytest.fail.Exception as exc:
            result, message = "fail", str(exc.msg)
        except Exception as exc:
            frames = "".join(traceback.format_exception(exc, limit=-4)).rstrip()
            result = "fail"
            message = (
                f"the check could not run: {type(exc).__name__}: {exc}\n{frames}\n"
                f"How to fix: run the check with pytest (a test class subclassing ConnectorSuite with "
                f'service = "{service}") to see the whole traceback.'
            )
    output = out.getvalue().strip()
    if result == "fail" and output:
        message += "\nOutput while the check ran:\n" + "\n".join(f"  {line}" for line in output.splitlines())
    return CheckOutcome(service, distribution, check, result, message, time.monotonic() - started)


def _broken_outcome(plugin: BrokenPlugin) -> CheckOutcome:
    message = (
        f"plugin {plugin.entry_point} ({plugin.distribution} {plugin.distribution_version}) was skipped by the "
        f"registry: {plugin.error}\n"
        "How to fix: correct what the error names (`interlink connectors list` shows it too); no check of its "
        "connector can run until it loads."
    )
    return CheckOutcome(plugin.entry_point, plugin.distribution, LOAD_CHECK, "fail", message)


def run(
    targets: Iterable[Target], url_setting: str | None = None, checks: Sequence[str] = CHECKS
) -> list[CheckOutcome]:
    """Every check in ``checks`` on every target, in order."""
    outcomes: list[CheckOutcome] = []
    for target in targets:
        if isinstance(target, BrokenPlugin):
            outcomes.append(_broken_outcome(target))
            continue
        suite = suite_class(target, url_setting)
        outcomes += [run_check(suite, check, target.distribution) for check in checks]
    return outcomes


def summary(outcomes: Sequence[CheckOutcome]) -> dict[str, int]:
    """How many checks passed, failed and were skipped."""
    return {result: sum(o.result == result for o in outcomes) for result in RESULTS}


def format_report(outcomes: Sequence[CheckOutcome]) -> str:
    """The table (service, check, result, detail), then each failure's whole message, then the counts."""
    header = ("service", "check", "result", "detail")
    rows = [(o.service, o.check, o.result, _shorten(o.detail) if o.result != "pass" else "") for o in outcomes]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]

    def line(row: tuple[str, str, str, str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]

    lines = [line(header).rstrip(), line(("-" * widths[0], "-" * widths[1], "-" * widths[2], "------"))]
    lines += [line(row).rstrip() for row in rows]
    failures = [o for o in outcomes if o.result == "fail"]
    for outcome in failures:
        lines += ["", f"FAIL {outcome.service} {outcome.check}"]
        lines += [f"  {text}" for text in outcome.message.splitlines()]
    counts = summary(outcomes)
    services = len({o.service for o in outcomes})
    lines += [
        "",
        f"{len(outcomes)} checks on {services} connector{'s' if services != 1 else ''}: "
        f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped",
    ]
    return "\n".join(lines)


def _shorten(text: str) -> str:
    return text if len(text) <= _DETAIL_WIDTH else text[: _DETAIL_WIDTH - 3].rstrip() + "..."
