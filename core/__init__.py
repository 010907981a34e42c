"""Interlink: a plugin-based connector framework (the core library connector authors depend on)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interlink.pipeline import Published
    from interlink.runtime import Runtime

try:
    __version__ = version("interlink")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__", "publish"]


def publish(
    runtime: Runtime, tenant_id: str, events: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> list[Published]:
    """Publish domain events from Python, exactly as ``POST /v1/events`` does.

    ``events`` is one event (``{"type": ..., "data": ..., "id"?: ..., "occurred_at"?: ...}``) or a list of
    them; invalid input raises :class:`interlink.errors.InvalidInputError` listing every problem.
    """
    from interlink.pipeline import parse_events
    from interlink.pipeline import publish as publish_events

    body = events if isinstance(events, Mapping) else {"events": list(events)}
    return publish_events(runtime, tenant_id, parse_events(body))
