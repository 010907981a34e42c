"""The conformance suite is itself tested: each deliberately broken connector fails exactly the check
that names its defect, with a message that points at it, and the reference connector passes them all."""

from __future__ import annotations

import pytest

from interlink.registry import RegisteredConnector
from interlink.testing import CHECKS, ConnectorSuite
from tests.conformance.broken.connectors import BROKEN, Broken, GoodConnector, manifest, registered
from tests.conformance.broken.emulator import ReferenceEmulator

SETTINGS_CHECKS = ("test_generated_settings_are_accepted", "test_mutated_settings_are_rejected_with_pointers")


def run_suite(target: RegisteredConnector, checks: tuple[str, ...] = CHECKS) -> dict[str, str]:
    """The checks of the suite against ``target``: ``passed``, ``skipped: ...`` or ``failed: ...``."""

    class Suite(ConnectorSuite):
        service = target.service
        read_timeout = 0.3
        max_examples = 5
        emulator_class = ReferenceEmulator
        sync_records = 60

        def registered(self) -> RegisteredConnector:
            return target

    results: dict[str, str] = {}
    for name in checks:
        try:
            getattr(Suite(), name)()
        except pytest.skip.Exception as exc:
            results[name] = f"skipped: {exc}"
        except pytest.fail.Exception as exc:
            results[name] = f"failed: {exc}"
        else:
            results[name] = "passed"
    return results


def test_checks_lists_every_check_of_the_suite() -> None:
    assert sorted(CHECKS) == sorted(n for n in dir(ConnectorSuite) if n.startswith("test_"))


def test_the_reference_connector_passes_every_check() -> None:
    results = run_suite(registered(GoodConnector, manifest("reference")))
    assert results == dict.fromkeys(CHECKS, "passed")


@pytest.mark.parametrize("broken", BROKEN, ids=lambda b: b.name)
def test_a_broken_connector_fails_exactly_the_check_naming_its_defect(broken: Broken) -> None:
    same_settings = broken.connector.manifest.settings_schema == manifest("reference").settings_schema
    # The settings checks read only the manifest's schema: the reference run covers an unchanged one.
    checks = tuple(c for c in CHECKS if c not in SETTINGS_CHECKS or not same_settings)
    results = run_suite(broken.connector, checks)
    failed = {name: result for name, result in results.items() if result.startswith("failed")}
    assert list(failed) == [broken.check], failed
    assert broken.message in failed[broken.check]
    assert "How to fix:" in failed[broken.check]
