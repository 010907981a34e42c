"""The SQL warehouse connector: a stub whose methods arrive with the connectors issue."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

__all__ = ["WarehouseConnector", "register_connectors"]


class WarehouseConnector(Connector):
    """SQL warehouse: the methods its manifest declares, each a stub until the connectors issue."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """Stub until the connectors issue.

        It will run SELECT 1 (or its API equivalent).
        """
        raise NotImplementedError("warehouse check arrives with the connectors issue")

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Stub until the connectors issue.

        It will upsert the event into the events table, keyed on the event id.
        """
        raise NotImplementedError("warehouse deliver arrives with the connectors issue")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Stub until the connectors issue.

        It will select rows of sourceTable past the cursor column's last value.
        """
        raise NotImplementedError("warehouse sync arrives with the connectors issue")


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in SQL warehouse connector with its manifest."""
    register(WarehouseConnector, builtin_manifest_path("warehouse"))
