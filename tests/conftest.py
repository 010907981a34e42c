"""Shared fixtures: a real store on SQLite and on the machine's PostgreSQL, and a real API client."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from litestar.testing import TestClient

from interlink.api import create_app
from interlink.config import Config
from interlink.runtime import Runtime
from interlink.store.tenants import create_tenant

PG_ADMIN_URL = os.environ.get("INTERLINK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _postgres_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"PostgreSQL not reachable: {reason}")


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        _postgres_unavailable(str(exc).splitlines()[0])
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(pg_admin: sa.Engine) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"interlink_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'interlink.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    return Config(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_keys=(Fernet.generate_key().decode(),),
        broker_url=None,
    )


@pytest.fixture
def runtime(config: Config) -> Iterator[Runtime]:
    rt = Runtime.start(config)
    yield rt
    rt.close()


@pytest.fixture
def two_pg_nodes(config: Config, postgres_url: str) -> Iterator[tuple[Runtime, Runtime]]:
    """Two API nodes (two runtimes, two connection pools, two publish writers) on one PostgreSQL database."""
    on_pg = dataclasses.replace(config, database_url=postgres_url)
    first = Runtime.start(on_pg)
    second = Runtime.start(on_pg)
    yield first, second
    second.close()
    first.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(create_app(runtime)) as c:
        yield c


def make_tenant(runtime: Runtime, name: str) -> dict[str, str]:
    with runtime.engine.begin() as conn:
        tenant, token = create_tenant(conn, name)
    return {"id": tenant.id, "token": token, "Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(runtime: Runtime) -> dict[str, str]:
    """Headers of a fresh tenant ``acme``."""
    t = make_tenant(runtime, "acme")
    return {"Authorization": t["Authorization"]}


@pytest.fixture
def api(live: Runtime) -> Iterator[TestClient]:  # type: ignore[type-arg]
    """A client of the app around ``live``: the modules that use it define ``live`` (with a worker)."""
    with TestClient(create_app(live)) as c:
        yield c


@pytest.fixture
def tenant(live: Runtime) -> dict[str, str]:
    """Headers of a fresh tenant ``acme`` on ``live``."""
    return {"Authorization": make_tenant(live, "acme")["Authorization"]}
