"""Configuration from the environment; every knob an operator can turn is read here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

__all__ = ["Config"]


def _number(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None


def _whole(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Config:
    """Where data lives and which services to use. ``from_env`` reads the ``INTERLINK_*`` variables."""

    data_dir: Path
    database_url: str
    secret_keys: tuple[str, ...]
    broker_url: str | None
    worker_threads: int = 8
    """Threads of the in-process worker (embedded default) and default threads of ``interlink worker``."""
    lease_seconds: float = 300.0
    """How long a worker owns an event it took; past that, the reaper hands the event to another worker."""
    redispatch_after: float = 120.0
    """A queued event whose message has not been consumed for this long is sent again (lost messages)."""
    reaper_interval: float = 5.0
    """Seconds between two passes of the reaper."""
    scheduler_interval: float = 10.0
    """Seconds between two passes of the sync scheduler, which queues the syncs that are due."""
    hook_max_bytes: int = 1024 * 1024
    """The largest inbound webhook body accepted (``POST /v1/hooks/{id}``); a larger one answers 413."""

    @property
    def embedded(self) -> bool:
        """True on the embedded default: SQLite in the data directory, no external server."""
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls) -> Config:
        data_dir = Path(os.environ.get("INTERLINK_DATA_DIR") or platformdirs.user_data_dir("interlink"))
        database_url = os.environ.get("INTERLINK_DATABASE_URL") or f"sqlite:///{data_dir / 'interlink.db'}"
        keys = tuple(k.strip() for k in os.environ.get("INTERLINK_SECRET_KEY", "").split(",") if k.strip())
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            secret_keys=keys,
            broker_url=os.environ.get("INTERLINK_BROKER_URL") or None,
            worker_threads=_whole("INTERLINK_WORKER_THREADS", 8),
            lease_seconds=_number("INTERLINK_LEASE_SECONDS", 300.0),
            redispatch_after=_number("INTERLINK_REDISPATCH_AFTER", 120.0),
            reaper_interval=_number("INTERLINK_REAPER_INTERVAL", 5.0),
            scheduler_interval=_number("INTERLINK_SCHEDULER_INTERVAL", 10.0),
            hook_max_bytes=_whole("INTERLINK_HOOK_MAX_BYTES", 1024 * 1024),
        )
