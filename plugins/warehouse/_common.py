"""What both warehouse kinds share: the settings they read, the row an event becomes, the event a row becomes."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from interlink.connector import ConnectorContext, PermanentError
from interlink.envelope import envelope

__all__ = [
    "DEFAULT_TABLE",
    "ROW_EVENT",
    "SERVICE",
    "event_row",
    "identifier",
    "row_envelope",
    "source_columns",
]

SERVICE = "warehouse"
ROW_EVENT = "warehouse.row"
DEFAULT_TABLE = "interlink_events"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_MAX_ID = 200
"""The core's longest record id; longer row ids are hashed."""


def identifier(ctx: ConnectorContext, setting: str, default: str | None = None) -> str | None:
    """``settings[setting]`` as a plain SQL identifier (``default`` when unset); refused when it is anything else.

    The manifest's pattern already says so; checking again here keeps SQL built from settings safe even when a
    connector is called with settings the core did not validate.
    """
    value = ctx.settings.get(setting)
    if value is None or value == "":
        return default
    text = str(value).strip()
    if not _IDENTIFIER.match(text):
        raise PermanentError(
            f"{text[:40]!r} is not a plain table or column name (letters, digits, _) — update settings.{setting}",
            setting=setting,
        )
    return text


def source_columns(ctx: ConnectorContext) -> tuple[str, str, str] | None:
    """``(sourceTable, cursorColumn, primaryKey)``, or ``None`` when no source table is set (no sync)."""
    table = identifier(ctx, "sourceTable")
    if table is None:
        return None
    cursor = identifier(ctx, "cursorColumn", "updated_at")
    key = identifier(ctx, "primaryKey", "id")
    assert cursor is not None
    assert key is not None
    return table, cursor, key


def event_row(event: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
    """The events-table row of one event: ``id`` is the idempotency key (the event id on every attempt)."""
    return {
        "id": idempotency_key,
        "type": str(event.get("type") or ""),
        "occurred_at": event.get("occurred_at"),
        "data": event.get("data") if event.get("data") is not None else {},
    }


def row_envelope(table: str, row: Mapping[str, Any], cursor: str, key: str) -> dict[str, Any]:
    """A ``warehouse.row`` envelope for one source row whose values are already JSON.

    Its id is the primary key *and* the cursor value: a re-read of the same version of a row is recorded once,
    while a changed row (its cursor moved) is a new event.
    """
    row_id = f"{table}:{_text(row.get(key))}@{_text(row.get(cursor))}"
    if len(row_id) > _MAX_ID:
        row_id = f"{table}:sha256:{hashlib.sha256(row_id.encode()).hexdigest()}"[:_MAX_ID]
    moment = row.get(cursor)
    occurred = moment if isinstance(moment, str) and _looks_like_time(moment) else None
    return envelope(
        id=row_id,
        type=ROW_EVENT,
        source=SERVICE,
        occurred_at=occurred,
        subject={"id": _text(row.get(key))},
        data=row,
        raw=row,
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)


def _looks_like_time(value: str) -> bool:
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value))
