"""The SQL warehouse connector: events loaded into a PostgreSQL or BigQuery table, source-table rows pulled back.

``settings.kind`` picks the backend: ``postgresql`` speaks the wire protocol through psycopg (the optional extra
``interlink[postgres]``), ``bigquery`` the REST API through ``ctx.http`` (see ``_postgres`` and ``_bigquery``
for what each call does and how failures are classified). Both load one row per event id (the idempotency
key), so a retried delivery never adds a second row, and both sync ``sourceTable`` by keyset over
``(cursorColumn, primaryKey)`` with a checkpoint after every page.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from interlink.connector import CheckResult, Connector, ConnectorContext, PermanentError
from interlink.hookspecs import hookimpl
from interlink.manifest import builtin_manifest_path
from interlink.registry import Register

from . import _bigquery, _postgres

__all__ = ["WarehouseConnector", "register_connectors"]

_BACKENDS: dict[str, Any] = {"postgresql": _postgres, "bigquery": _bigquery}


def _backend(ctx: ConnectorContext) -> Any:
    kind = str(ctx.settings.get("kind") or "")
    backend = _BACKENDS.get(kind)
    if backend is None:
        raise PermanentError(
            f"unknown warehouse kind {kind[:40]!r} — set settings.kind to one of {', '.join(_BACKENDS)}",
            setting="kind",
        )
    return backend


class WarehouseConnector(Connector):
    """PostgreSQL or BigQuery, by ``settings.kind``."""

    def check(self, ctx: ConnectorContext) -> CheckResult:
        """PostgreSQL: connect and ``SELECT 1``; BigQuery: read the dataset."""
        result: CheckResult = _backend(ctx).check(ctx)
        return result

    def deliver(self, ctx: ConnectorContext, event: Mapping[str, Any], idempotency_key: str) -> None:
        """Upsert the event as one row keyed on ``idempotency_key``."""
        outcome = self.deliver_batch(ctx, [(event, idempotency_key)])[0]
        if outcome is not None:
            raise outcome

    def deliver_batch(
        self, ctx: ConnectorContext, batch: Sequence[tuple[Mapping[str, Any], str]]
    ) -> list[Exception | None]:
        """Load the whole batch at once: one transaction (PostgreSQL) or insertAll request (BigQuery)."""
        if not batch:
            return []
        try:
            backend = _backend(ctx)
        except PermanentError as exc:
            return [exc] * len(batch)
        outcomes: list[Exception | None] = backend.deliver_batch(ctx, batch)
        return outcomes

    def sync(self, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
        """Rows of ``sourceTable`` past the saved ``(cursorColumn, primaryKey)``, as ``warehouse.row`` events."""
        records: Iterator[dict[str, Any]] = _backend(ctx).sync(ctx)
        return records


@hookimpl
def register_connectors(register: Register) -> None:
    """Register the built-in SQL warehouse connector with its manifest."""
    register(WarehouseConnector, builtin_manifest_path("warehouse"))
