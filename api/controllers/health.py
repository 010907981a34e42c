"""``GET /health``: the process is up and its database answers."""

from __future__ import annotations

import sqlalchemy as sa
from litestar import get
from litestar.di import NamedDependency

from interlink import __version__
from interlink.api.schemas import Health
from interlink.runtime import Runtime


@get("/health", operation_id="getHealth", tags=["health"], sync_to_thread=True, summary="Liveness and database check")
def health(runtime: NamedDependency[Runtime]) -> Health:
    """Answers when the server is up and its database answers a query; no token needed."""
    with runtime.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return Health(status="ok", version=__version__, database=runtime.engine.dialect.name)
