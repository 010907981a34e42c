"""Fan-out: which of a tenant's integrations receive an event type, read in the publishing transaction.

:class:`TargetCache` lets the PostgreSQL group writer skip that read: it remembers what the last read
returned, and the writer's ``INSERT`` checks it against the tables in the same statement
(:data:`GUARD`), inserting nothing if anything changed meanwhile; the writer then reads afresh and
writes again. So an integration created, disabled or changed before a publish's statement runs is
honoured by it, as with a read in the transaction, for one round trip to the database instead of two.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from interlink.store.tables import integrations, synchronizations

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["GUARD", "TargetCache", "TargetRow", "fanout_rows", "fanout_targets", "targets_by_type"]

TargetRow = tuple[str, str, str]
"""``(integration_id, service, event_type)``: an enabled integration with an enabled synchronization."""

_FANOUT = (
    sa.select(integrations.c.id, integrations.c.service, synchronizations.c.event_type)
    .join(synchronizations, synchronizations.c.integration_id == integrations.c.id)
    .where(
        integrations.c.tenant_id == sa.bindparam("tenant_id"),
        integrations.c.kind == "integration",  # notification endpoints get only notify()'s events
        integrations.c.enabled.is_(True),
        synchronizations.c.enabled.is_(True),
        synchronizations.c.event_type.in_(sa.bindparam("types", expanding=True)),
    )
    .order_by(integrations.c.id)
)
"""Built once: building the expression cost more than running it."""

GUARD = (
    "(SELECT coalesce(string_agg(i.id || ' ' || length(i.service) || ':' || i.service || ' '"
    " || length(s.event_type) || ':' || s.event_type, ',' ORDER BY i.id COLLATE \"C\", s.event_type COLLATE \"C\"), '')"
    " FROM integrations i JOIN synchronizations s ON s.integration_id = i.id"
    " WHERE i.tenant_id = {tenant} AND i.kind = 'integration' AND i.enabled AND s.enabled"
    " AND s.event_type = ANY({types}::text[])) = {fingerprint}"
)
"""PostgreSQL: true when the tenant's fan-out rows for ``types`` are still those that gave ``fingerprint``.

Every field of variable length carries its length, so no two sets of rows share a fingerprint; the
order is by code point on both sides (``COLLATE "C"`` here, ``sorted`` in :func:`fingerprint`).
"""


def fanout_rows(conn: sa.Connection, tenant_id: str, types: Iterable[str]) -> list[TargetRow]:
    """The tenant's fan-out rows for ``types``, as they are now."""
    return [(i, s, t) for i, s, t in conn.execute(_FANOUT, {"tenant_id": tenant_id, "types": sorted(types)})]


def fanout_targets(
    runtime: Runtime, conn: sa.Connection, tenant_id: str, types: set[str], exclude: str | None
) -> dict[str, list[str]]:
    """Integration ids, by event type, of the tenant's enabled integrations that deliver that type."""
    return targets_by_type(runtime, fanout_rows(conn, tenant_id, types), exclude)


def targets_by_type(runtime: Runtime, rows: Iterable[Sequence[Any]], exclude: str | None) -> dict[str, list[str]]:
    """Keep the ``(integration_id, service, event_type)`` rows whose connector delivers that type."""
    by_type: dict[str, list[str]] = {}
    for integration_id, service, event_type in rows:
        registered = runtime.registry.get(service)
        if registered is None or integration_id == exclude:
            continue
        if registered.manifest.delivers(event_type):
            by_type.setdefault(event_type, []).append(integration_id)
    return by_type


def fingerprint(rows: Iterable[TargetRow]) -> str:
    """The text :data:`GUARD` computes from the tables for the same rows."""
    return ",".join(f"{i} {len(s)}:{s} {len(t)}:{t}" for i, s, t in sorted(rows, key=lambda row: (row[0], row[2])))


class TargetCache:
    """The fan-out rows last read, by tenant and event type.

    Filled by the group writer thread, read by it and by the event loops' writers: an entry is replaced
    whole, never changed in place, and whatever mix of old and new entries a reader gets, the guard of the
    statement built from them checks exactly those against the tables.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._rows: dict[tuple[str, str], list[TargetRow]] = {}
        self._max_entries = max_entries

    def rows(self, tenant_id: str, types: Iterable[str]) -> list[TargetRow] | None:
        """The remembered rows for all of ``types``, or ``None`` if one of them was never read."""
        found: list[TargetRow] = []
        for event_type in types:
            rows = self._rows.get((tenant_id, event_type))
            if rows is None:
                return None
            found += rows
        return found

    def remember(self, tenant_id: str, types: Iterable[str], rows: Iterable[TargetRow]) -> None:
        """Keep what a read of ``types`` returned (a type no row matched is remembered as empty)."""
        if len(self._rows) >= self._max_entries:
            self._rows.clear()
        fresh: dict[tuple[str, str], list[TargetRow]] = {(tenant_id, t): [] for t in types}
        for row in rows:
            fresh[(tenant_id, row[2])].append(row)
        self._rows.update(fresh)

    def forget(self) -> None:
        """Drop everything: a guard found the tables changed."""
        self._rows.clear()
