"""The pipeline at scale: API node + ``interlink worker`` processes + real Redis + PostgreSQL.

A worker killed with SIGKILL mid-delivery, and a Redis server that crashes and comes back empty, lose
no accepted event.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from litestar.testing import TestClient

from interlink.api import create_app
from interlink.config import Config
from interlink.runtime import Runtime
from tests.conftest import make_tenant
from tests.pipeline_helpers import all_in, create_custom, publish, statuses, wait_for
from tests.redis_helpers import MACHINE_REDIS, private_redis, require_redis, worker_process
from tests.sink import Reply, Sink, running_sink

pytestmark = pytest.mark.postgres


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as s:
        yield s


@pytest.fixture
def secret_key() -> str:
    return Fernet.generate_key().decode()


def node_config(tmp_path: Path, postgres_url: str, broker_url: str, secret_key: str) -> Config:
    return Config(
        data_dir=tmp_path / "data",
        database_url=postgres_url,
        secret_keys=(secret_key,),
        broker_url=broker_url,
        lease_seconds=3.0,
        redispatch_after=1.0,
        reaper_interval=0.3,
    )


def worker_env(config: Config) -> dict[str, str]:
    assert config.broker_url is not None
    return {
        "INTERLINK_DATA_DIR": str(config.data_dir),
        "INTERLINK_DATABASE_URL": config.database_url,
        "INTERLINK_BROKER_URL": config.broker_url,
        "INTERLINK_SECRET_KEY": ",".join(config.secret_keys),
        "INTERLINK_LEASE_SECONDS": str(config.lease_seconds),
        "INTERLINK_REDISPATCH_AFTER": str(config.redispatch_after),
        "INTERLINK_REAPER_INTERVAL": str(config.reaper_interval),
    }


def test_redis_workers_deliver_and_a_sigkilled_worker_loses_nothing(
    tmp_path: Path, postgres_url: str, secret_key: str, sink: Sink
) -> None:
    require_redis().flushdb()
    cfg = node_config(tmp_path, postgres_url, MACHINE_REDIS, secret_key)
    api_node = Runtime.start(cfg)  # enqueues only: no worker in this process
    try:
        auth = {"Authorization": make_tenant(api_node, "acme")["Authorization"]}
        sink.script("/slow", default=Reply(200, delay=0.5))
        with TestClient(create_app(api_node)) as client:
            create_custom(client, auth, sink.url("/slow"))
            deliveries = publish(
                client, auth, {"events": [{"type": "order.created", "data": {"n": i}} for i in range(6)]}
            )
        assert set(statuses(api_node, deliveries).values()) == {"queued"}
        with worker_process(worker_env(cfg)) as doomed:
            wait_for(lambda: sink.at("/slow"), timeout=20)
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait()
        stuck = [i for i, s in statuses(api_node, deliveries).items() if s != "succeeded"]
        assert stuck, "the worker was killed before it could finish"
        assert "processing" in statuses(api_node, deliveries).values()
        with worker_process(worker_env(cfg)):
            wait_for(lambda: all_in(api_node, deliveries, {"succeeded"}), timeout=40)
        received = [r.headers["webhook-id"] for r in sink.at("/slow")]
        assert set(received) == set(deliveries)
        assert len(received) >= len(deliveries)
    finally:
        api_node.close()


def test_a_redis_crash_loses_no_accepted_event(tmp_path: Path, postgres_url: str, secret_key: str, sink: Sink) -> None:
    with private_redis(tmp_path) as redis_server:
        cfg = node_config(tmp_path, postgres_url, redis_server.url, secret_key)
        api_node = Runtime.start(cfg)
        try:
            auth = {"Authorization": make_tenant(api_node, "acme")["Authorization"]}
            with TestClient(create_app(api_node)) as client:
                create_custom(client, auth, sink.url("/hook"))
                before = publish(
                    client, auth, {"events": [{"type": "order.created", "data": {"n": i}} for i in range(10)]}
                )
                redis_server.kill()  # the queued messages die with it
                during = publish(client, auth, {"type": "order.created", "data": {"n": "while down"}})
                redis_server.start()  # back, and empty
            with worker_process(worker_env(cfg)):
                wait_for(lambda: all_in(api_node, before + during, {"succeeded"}), timeout=40)
            assert {r.headers["webhook-id"] for r in sink.at("/hook")} == set(before + during)
        finally:
            api_node.close()


def test_interlink_worker_refuses_to_start_without_a_broker(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from interlink.cli import main

    result = CliRunner().invoke(main, ["worker"], env={"INTERLINK_DATA_DIR": str(tmp_path), "INTERLINK_BROKER_URL": ""})
    assert result.exit_code != 0
    assert "INTERLINK_BROKER_URL" in result.output


def test_sigterm_stops_every_worker_process(tmp_path: Path, secret_key: str) -> None:
    import subprocess
    import sys
    import time

    require_redis()
    env = {
        "INTERLINK_DATA_DIR": str(tmp_path),
        "INTERLINK_BROKER_URL": MACHINE_REDIS,
        "INTERLINK_SECRET_KEY": secret_key,
        "INTERLINK_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
    }
    parent = subprocess.Popen(
        [sys.executable, "-m", "interlink.cli", "worker", "--processes", "2"],
        env={**os.environ, **env},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children_file = Path(f"/proc/{parent.pid}/task/{parent.pid}/children")
    children = wait_for(
        lambda: (
            [int(p) for p in children_file.read_text().split()][:2]
            if len(children_file.read_text().split()) >= 2
            else None
        ),
        timeout=20,
    )
    time.sleep(1.0)
    parent.send_signal(signal.SIGTERM)  # the parent only, as a process manager would
    assert parent.wait(timeout=30) == 0

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"

    wait_for(lambda: all(gone(pid) for pid in children), timeout=20)
