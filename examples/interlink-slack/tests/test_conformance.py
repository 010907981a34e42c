"""The Slack connector passes the Interlink conformance suite, against the local Slack emulator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from interlink.testing import ConnectorSuite

from interlink_slack.emulator import SlackEmulator


class TestSlackConformance(ConnectorSuite):
    service = "slack"
    settings = {"webhookUrl": "https://hooks.slack.com/services/T00000000/B00000000/conformance"}
    url_setting = "webhookUrl"  # the suite points it at its fault proxy, which forwards to the emulator

    @contextmanager
    def emulator(self) -> Iterator[str]:
        with SlackEmulator() as slack:
            yield slack.url
