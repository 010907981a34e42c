"""The conformance suite is itself tested: each deliberately broken connector fails exactly the check
that names its defect, with a message that points at it, and the reference connector passes them all."""

from __future__ import annotations

import pytest

from interlink.registry import RegisteredConnector
from interlink.testing import CHECKS, ConnectorSuite
from tests.conformance.broken.connectors import BROKEN, Broken, GoodConnector, manifest, registered


def run_suite(target: RegisteredConnector) -> dict[str, str]:
    """Every check of the suite against ``target``: ``passed``, ``skipped: ...`` or ``failed: ...``."""

    class Suite(ConnectorSuite):
        service = target.service
        read_timeout = 0.3
        max_examples = 5

        def registered(self) -> RegisteredConnector:
            return target

    results: dict[str, str] = {}
    for name in CHECKS:
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
    results = run_suite(broken.connector)
    failed = {name: result for name, result in results.items() if result.startswith("failed")}
    assert list(failed) == [broken.check], failed
    assert broken.message in failed[broken.check]
    assert "How to fix:" in failed[broken.check]
