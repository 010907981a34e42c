"""The example third-party package ``examples/interlink-slack`` (installed by ``make install``) loads,
is listed and passes the conformance suite exactly like a built-in connector."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from interlink.cli import main
from interlink.registry import load_registry
from interlink.testing import CHECKS

NOT_INSTALLED = "interlink-slack is not installed: run `make install` (it pip-installs -e examples/interlink-slack)"


@pytest.fixture(autouse=True)
def _no_plugin_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLINK_PLUGINS_ALLOW", raising=False)
    monkeypatch.delenv("INTERLINK_PLUGINS_BLOCK", raising=False)


def test_the_registry_loads_it_from_its_distribution() -> None:
    registry = load_registry()
    slack = registry.get("slack")
    assert slack is not None, NOT_INSTALLED
    assert slack.distribution == "interlink-slack"
    assert slack.entry_point == "slack"
    assert slack.connector_class.__name__ == "SlackConnector"
    assert slack.manifest.secret_keys == {"webhookUrl"}
    assert slack.manifest.accepts_any_event is True
    assert [b for b in registry.broken if b.distribution == "interlink-slack"] == []


def test_the_catalogue_lists_it_like_a_builtin(client: TestClient, auth: dict[str, str]) -> None:  # type: ignore[type-arg]
    available = {m["service"]: m for m in client.get("/v1/integrations/available", headers=auth).json()["available"]}
    assert "slack" in available, NOT_INSTALLED
    registry = load_registry()
    for service, distribution in (("slack", "interlink-slack"), ("klaviyo", "interlink")):
        listed = dict(available[service])
        assert listed.pop("distribution") == distribution
        raw = registry.connectors[service].manifest.raw  # listed as its manifest says, like every built-in
        assert listed == {key: value for key, value in raw.items() if key in listed}
        assert set(raw) - set(listed) <= {"$schema", "accepts_any_event", "default_sync_interval", "docs_url"}
    slack = available["slack"]
    assert slack["settings"]["properties"]["webhookUrl"]["writeOnly"] is True
    hook = "https://hooks.slack.com/services/T0/B0/abcdefgh"
    created = client.post(
        "/v1/integrations",
        json={"service": "slack", "settings": {"webhookUrl": hook, "channel": "#sales"}},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    assert created.json()["integration"]["settings"] == {"webhookUrl": "********", "channel": "#sales"}
    assert hook not in created.text


def test_interlink_conformance_passes_on_the_distribution() -> None:
    result = CliRunner().invoke(main, ["conformance", "interlink-slack", "--url-setting", "webhookUrl", "--json"])
    report = json.loads(result.output)
    failures = [f"{r['check']}: {r['message']}" for r in report["results"] if r["result"] == "fail"]
    assert result.exit_code == 0, "\n".join(failures)
    assert report["ok"] is True
    assert [r["check"] for r in report["results"]] == list(CHECKS)
    assert {r["service"] for r in report["results"]} == {"slack"}
    # Slack incoming webhooks only deliver: every other capability's checks do not apply.
    applies = [
        c for c in CHECKS if not c.startswith(("test_check_", "test_sync_", "test_webhook_", "test_secrets_never"))
    ]
    assert [r["check"] for r in report["results"] if r["result"] == "pass"] == applies
