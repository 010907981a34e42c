"""``interlink conformance SERVICE_OR_PACKAGE...``: the suite from the command line, a table, an exit code."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from interlink.cli import main
from interlink.registry import BrokenPlugin, ConnectorRegistry, load_registry
from interlink.testing import CHECKS
from interlink.testing import runner as conformance
from tests.conformance.broken.connectors import BROKEN, Broken, GoodConnector, manifest, registered


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["conformance", *args])


def rows(output: str) -> dict[tuple[str, str], str]:
    """The table's rows, as (service, check) -> result."""
    found = {}
    for line in output.splitlines():
        cells = line.split()
        if len(cells) >= 3 and cells[1] in (*CHECKS, conformance.LOAD_CHECK) and cells[2] in conformance.RESULTS:
            found[cells[0], cells[1]] = cells[2]
    return found


# custom neither checks nor syncs, and a Bearer key signs neither the body nor a timestamp.
CUSTOM_SKIPS = {
    check
    for check in CHECKS
    if check.startswith(("test_check_", "test_sync_"))
    or check in ("test_webhook_tampered_body_is_refused", "test_webhook_stale_replay_is_refused")
}


def test_custom_passes_every_check_that_applies() -> None:
    result = invoke("custom")
    assert result.exit_code == 0, result.output
    expected = {("custom", check): "skip" if check in CUSTOM_SKIPS else "pass" for check in CHECKS}
    assert rows(result.output) == expected
    passed, skipped = len(CHECKS) - len(CUSTOM_SKIPS), len(CUSTOM_SKIPS)
    assert f"{len(CHECKS)} checks on 1 connector: {passed} passed, 0 failed, {skipped} skipped" in result.output
    assert result.exception is None


def test_json_lists_every_check() -> None:
    result = invoke(
        "custom", "revenuecat", "--json", "--check", "manifest_is_valid", "--check", "test_deliver_4xx_is_permanent"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert [(r["service"], r["check"]) for r in report["results"]] == [
        ("custom", "test_manifest_is_valid"),
        ("custom", "test_deliver_4xx_is_permanent"),
        ("revenuecat", "test_manifest_is_valid"),
        ("revenuecat", "test_deliver_4xx_is_permanent"),
    ]
    assert report["results"][-1]["result"] == "skip"
    assert report["results"][-1]["detail"] == "the manifest does not declare deliver"
    assert report["summary"] == {"pass": 3, "fail": 0, "skip": 1}


def test_json_without_check_lists_all_of_them() -> None:
    result = invoke("custom", "--json", "--url-setting", "url")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [r["check"] for r in report["results"]] == list(CHECKS)
    assert {r["result"] for r in report["results"]} <= {"pass", "skip"}
    assert set(report["results"][0]) == {"service", "distribution", "check", "result", "detail", "message", "seconds"}


def test_an_unknown_name_is_a_usage_error() -> None:
    result = invoke("nope")
    assert result.exit_code == 2
    assert "no installed connector has the service id or distribution name 'nope'" in result.output
    assert "Installed services: adapty, adjust" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_check_is_a_usage_error() -> None:
    result = invoke("custom", "--check", "bogus")
    assert result.exit_code == 2
    assert "unknown check bogus" in result.output


def test_the_distribution_runs_every_built_in_and_all_pass() -> None:
    result = invoke("interlink")
    assert result.exit_code == 0, result.output
    table = rows(result.output)
    builtins = sorted(r.service for r in load_registry().connectors.values() if r.distribution == "interlink")
    assert len(builtins) == 10
    assert sorted({service for service, _ in table}) == builtins
    assert "fail" not in table.values()
    assert all(table["custom", check] == ("skip" if check in CUSTOM_SKIPS else "pass") for check in CHECKS)
    assert "Traceback" not in result.output


def test_a_failure_reports_what_is_wrong_and_how_to_fix_it() -> None:
    [broken] = [b for b in BROKEN if b.check == "test_deliver_5xx_is_transient"]
    checks = ("test_deliver_5xx_is_transient", "test_manifest_is_valid")
    outcomes = conformance.run([broken.connector], checks=checks)
    assert [(o.check, o.result) for o in outcomes] == [(checks[0], "fail"), (checks[1], "pass")]
    report = conformance.format_report(outcomes)
    assert "a 5xx answer from the vendor is not classified as transient" in report
    assert "How to fix: call interlink.http.raise_for_status(response)" in report


def test_a_url_setting_the_connector_lacks_fails_with_the_fix() -> None:
    result = invoke("custom", "--url-setting", "baseUrl", "--check", "deliver_succeeds_against_the_emulator")
    assert result.exit_code == 1, result.output
    assert "url_setting 'baseUrl' is not a setting of custom" in result.output


# -- the runner on connectors that are not installed --


@pytest.mark.parametrize("broken", BROKEN[:1], ids=lambda b: b.name)
def test_the_runner_fails_exactly_the_check_naming_the_defect(broken: Broken) -> None:
    outcomes = conformance.run([broken.connector])
    failed = [o for o in outcomes if o.result == "fail"]
    assert [o.check for o in failed] == [broken.check]
    assert "How to fix:" in failed[0].message
    report = conformance.format_report(outcomes)
    assert f"FAIL {failed[0].service} {failed[0].check}" in report


def test_a_check_that_raises_is_a_failure_not_a_crash() -> None:
    suite = conformance.suite_class(registered(GoodConnector, manifest("exploding")))

    def explode(self: object) -> None:
        raise RuntimeError("the suite itself broke")

    suite.test_manifest_is_valid = explode  # type: ignore[method-assign]
    outcome = conformance.run_check(suite, "test_manifest_is_valid")
    assert outcome.result == "fail"
    assert outcome.detail == "the check could not run: RuntimeError: the suite itself broke"
    assert "How to fix:" in outcome.message


def test_names_resolve_to_services_distributions_and_broken_plugins() -> None:
    good = registered(GoodConnector, manifest("acme_one"))
    registry = ConnectorRegistry(
        connectors={"acme_one": good},
        broken=[BrokenPlugin("acme_two", good.distribution, good.distribution_version, "it exploded")],
    )
    assert conformance.resolve(["acme_one", "acme_one"], registry) == [good]
    by_distribution = conformance.resolve([good.distribution.upper().replace("-", "_")], registry)
    assert by_distribution[0] == good
    assert isinstance(by_distribution[1], BrokenPlugin)
    outcomes = conformance.run(by_distribution[1:])
    assert [(o.service, o.check, o.result) for o in outcomes] == [("acme_two", conformance.LOAD_CHECK, "fail")]
    assert "it exploded" in outcomes[0].message
    with pytest.raises(conformance.UnknownTarget, match="Plugins that failed to load"):
        conformance.resolve(["nope"], registry)
