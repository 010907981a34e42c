"""The runtime: configuration, database, key ring, connector registry and pipeline, built once per process."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

import sqlalchemy as sa

from interlink.config import Config
from interlink.registry import ConnectorRegistry, load_registry
from interlink.secrets import KeyRing
from interlink.store import create_engine, migrate

__all__ = ["Runtime", "freeze_startup_objects"]


@dataclass
class Runtime:
    """Everything a request or a job needs, passed explicitly (no import-time globals)."""

    config: Config
    engine: sa.Engine
    keyring: KeyRing
    registry: ConnectorRegistry
    pipeline: Pipeline = field(init=False)

    def __post_init__(self) -> None:
        self.pipeline = Pipeline(self)

    @classmethod
    def start(cls, config: Config | None = None, *, registry: ConnectorRegistry | None = None) -> Runtime:
        """Build the runtime from ``config`` (default: the environment) and migrate the database."""
        config = config or Config.from_env()
        engine = create_engine(config.database_url)
        migrate(engine)
        return cls(
            config=config,
            engine=engine,
            keyring=KeyRing.load(config.secret_keys, config.data_dir),
            registry=registry if registry is not None else load_registry(),
        )

    def close(self) -> None:
        """Stop this process's worker and reaper (if started) and release database connections."""
        self.pipeline.stop()
        self.engine.dispose()


def freeze_startup_objects() -> None:
    """Keep what is loaded at start-up out of the garbage collector's full collections from now on.

    For the processes Interlink runs itself (``interlink serve``, ``interlink worker``), once the runtime
    is up: the modules, the connector registry, SQLAlchemy's and Litestar's structures are hundreds of
    thousands of objects that live as long as the process, and every full collection walked them all.
    A sync of 100,000 records set off about thirty of those, a sixth of its CPU (``bench/sync.py``).
    A host application that embeds the library decides this for itself: nothing calls it there.
    """
    gc.collect()
    gc.freeze()


from interlink.pipeline.executor import Pipeline  # noqa: E402  (the pipeline needs the Runtime type)
