"""One reading of what a connector raised, shared by deliveries, syncs and the conformance suite.

Why one place: the suite promises authors that it classifies "exactly as the core does"; with a single
function that promise cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import httpx

from interlink.connector import PermanentError, TransientError
from interlink.http import transient_from_transport_error

__all__ = ["Failure", "classify_failure"]

Kind = Literal["transient", "permanent", "not_implemented", "unexpected"]


@dataclass(frozen=True)
class Failure:
    """``transient`` and ``unexpected`` (a bug in connector code) are tried again; the others are not."""

    kind: Kind
    message: str
    delay: float | None = None
    setting: str | None = None
    """The settings key the connector blamed (a refused credential), when the user can fix it there."""

    @property
    def retryable(self) -> bool:
        return self.kind in ("transient", "unexpected")


def classify_failure(exc: Exception) -> Failure:
    """What a connector's exception means: typed errors as raised, transport errors transient."""
    if isinstance(exc, TransientError):
        return Failure("transient", exc.message, exc.delay, exc.setting)
    if isinstance(exc, PermanentError):
        return Failure("permanent", exc.message, setting=exc.setting)
    if isinstance(exc, httpx.TransportError):
        return Failure("transient", transient_from_transport_error(exc).message)
    if isinstance(exc, NotImplementedError):
        return Failure("not_implemented", str(exc))
    return Failure("unexpected", f"unexpected error in the connector: {type(exc).__name__}: {exc}")
