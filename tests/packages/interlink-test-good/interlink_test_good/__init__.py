"""A third-party connector package, as an author would publish one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext, PermanentError
from interlink.hookspecs import hookimpl
from interlink.http import raise_for_status

DEFAULT_BASE_URL = "https://api.acme.example"


class AcmeTestConnector(Connector):
    def check(self, ctx: ConnectorContext) -> CheckResult:
        return CheckResult(ok=True, message="acme answers")

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Page ``GET /records?after=<cursor>``; each page's records, then a checkpoint at its end."""
        base = str(ctx.settings.get("baseUrl") or DEFAULT_BASE_URL).rstrip("/")
        cursor = ctx.state.get("cursor")
        while True:
            response = ctx.http.get(
                f"{base}/records",
                params={"after": cursor} if cursor else {},
                headers={"Authorization": f"Bearer {ctx.settings['apiKey']}"},
            )
            if response.status_code == 401:
                raise PermanentError("Invalid API key — update settings.apiKey", setting="apiKey")
            raise_for_status(response, setting="apiKey")
            page = response.json()
            for record in page["records"]:
                yield {"type": "acme.ping", **record}
            cursor = page["next_cursor"] or cursor
            yield {"checkpoint": {"cursor": cursor}}
            if not page["has_more"]:
                return


@hookimpl
def register_connectors(register):  # type: ignore[no-untyped-def]
    register(AcmeTestConnector, Path(__file__).with_name("manifest.json"))
