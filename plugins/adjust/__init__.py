"""The Adjust connector: a stub whose methods arrive with the connectors issue."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

__all__ = ["AdjustConnector", "register_connectors"]


class AdjustConnector(Connector):
    """Adjust: the methods its manifest declares, each a stub until the connectors issue."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """Stub until the connectors issue.

        It will request a one-day Report Service report.
        """
        raise NotImplementedError("adjust check arrives with the connectors issue")

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Stub until the connectors issue.

        It will send an S2S event with the mapped event token.
        """
        raise NotImplementedError("adjust deliver arrives with the connectors issue")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Stub until the connectors issue.

        It will pull Report Service KPIs day by day.
        """
        raise NotImplementedError("adjust sync arrives with the connectors issue")


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in Adjust connector with its manifest."""
    register(AdjustConnector, builtin_manifest_path("adjust"))
