"""A third-party connector package, as an author would publish one."""

from __future__ import annotations

from pathlib import Path

from interlink.connector import CheckResult, Connector, ConnectorContext
from interlink.hookspecs import hookimpl


class AcmeTestConnector(Connector):
    def check(self, ctx: ConnectorContext) -> CheckResult:
        return CheckResult(ok=True, message="acme answers")


@hookimpl
def register_connectors(register):  # type: ignore[no-untyped-def]
    register(AcmeTestConnector, Path(__file__).with_name("manifest.json"))
