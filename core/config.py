"""Configuration from the environment; every knob an operator can turn is read here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

__all__ = ["Config"]


@dataclass(frozen=True)
class Config:
    """Where data lives and which services to use. ``from_env`` reads the ``INTERLINK_*`` variables."""

    data_dir: Path
    database_url: str
    secret_keys: tuple[str, ...]
    broker_url: str | None

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
        )
