"""The README's walk-through works as written, against a real ``interlink serve``."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.server import stop_process_group

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
START, END = "<!-- walkthrough:start -->", "<!-- walkthrough:end -->"
TOKEN_LINE = re.compile(r"^\s+(il_\S+)\s*$", re.MULTILINE)
LISTENING_LINE = re.compile(r"^Interlink \S+ on (http://\S+)", re.MULTILINE)
STARTUP_SECONDS = 20.0


@dataclass(frozen=True)
class Server:
    base: str
    token: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _receiver_answers(port: int, within: float = 2.0) -> bool:
    """Whether examples/webhook_receiver.py still answers on ``port`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            answered = "webhook receiver" in httpx.get(f"http://127.0.0.1:{port}/", timeout=1).text
        except httpx.HTTPError:
            answered = False
        if not answered or time.monotonic() > deadline:
            return answered
        time.sleep(0.1)


def _walkthrough() -> str:
    assert README.count(START) == 1, f"README.md needs exactly one {START}"
    assert README.count(END) == 1, f"README.md needs exactly one {END}"
    section = README.split(START, 1)[1].split(END, 1)[0]
    blocks = re.findall(r"^```bash\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert blocks, "the walk-through has no ```bash blocks"
    return "\n".join(blocks)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``interlink serve`` on the embedded default in a fresh data directory, as `make serve` runs it."""
    data_dir = tmp_path_factory.mktemp("data")
    log_path = data_dir.parent / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLINK_")}
    env.update(INTERLINK_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    port = _free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "interlink.cli", "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        token = base = None
        while time.monotonic() < deadline and (token is None or base is None):
            assert process.poll() is None, f"interlink serve exited:\n{log_path.read_text()}"
            output = log_path.read_text(encoding="utf-8", errors="replace")
            token_match, base_match = TOKEN_LINE.search(output), LISTENING_LINE.search(output)
            token = token_match.group(1) if token_match else None
            base = base_match.group(1) if base_match else None
            time.sleep(0.05)
        assert token is not None, f"no token printed:\n{log_path.read_text()}"
        assert base == f"http://127.0.0.1:{port}", log_path.read_text()
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"/health did not answer 200:\n{log_path.read_text()}"
            assert process.poll() is None, f"interlink serve exited:\n{log_path.read_text()}"
            time.sleep(0.1)
        yield Server(base=base, token=token)
    finally:
        stop_process_group(process)


def test_every_curl_of_the_walkthrough_fails_on_an_http_error() -> None:
    calls = re.findall(r"\bcurl\b[^\n]*", _walkthrough())
    assert calls
    for call in calls:
        assert re.search(r"(--fail-with-body|--fail|\s-f\b|\s-[a-zA-Z]*f[a-zA-Z]*\b)", call), call


def test_the_variables_are_set_before_the_walkthrough() -> None:
    before = README.split(START, 1)[0]
    assert "BASE=http://127.0.0.1:8000\n" in before
    assert re.search(r"^TOKEN=il_\S+", before, flags=re.MULTILINE)
    assert re.search(r"^RECEIVER_PORT=\d+", before, flags=re.MULTILINE)


def test_the_receiver_is_started_from_the_checkout_and_stopped() -> None:
    script = _walkthrough()
    assert ".venv/bin/python examples/webhook_receiver.py" in script
    assert (ROOT / "examples" / "webhook_receiver.py").is_file()
    assert re.search(r"^trap .*kill .*RECEIVER_PID.* EXIT$", script, flags=re.MULTILINE), "no trap stops the receiver"


def test_the_walkthrough_runs_as_written(server: Server, tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + _walkthrough()
    receiver_port = _free_port()
    env = dict(os.environ, BASE=server.base, TOKEN=server.token, RECEIVER_PORT=str(receiver_port))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # python3 of this venv
    # The walk-through runs from a checkout: give the scratch folder the checkout's examples and venv.
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    started = time.monotonic()
    result = subprocess.run(
        ["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    elapsed = time.monotonic() - started
    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    # Part one: the configuration API.
    assert '"status": "ok"' in result.stdout or '"status":"ok"' in result.stdout, output
    assert '"sync_stats"' in result.stdout, output
    assert '"status": "disconnected"' in result.stdout, output
    assert '"inbound_key": "ik_' in result.stdout, output
    # Part two: events delivered, signed and verified; a failure found, read, retried; a waiting event cancelled.
    assert '"signing_secret": "whsec_' in result.stdout, output
    assert '"duplicate": true' in result.stdout, output
    received = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(e["type"], e["data"]["order_id"]) for e in received] == [
        ("order.created", "o_1001"),
        ("order.created", "o_1002"),
    ], output
    assert "received  evt_" in (tmp_path / "receiver.log").read_text(encoding="utf-8"), output
    assert '"status": "failed"' in result.stdout, output
    assert '"error": "ConnectError: ' in result.stdout, output
    assert re.search(r'"retry_of": "evt_\w+"', result.stdout), output
    assert '"status": "cancelled"' in result.stdout, output
    assert result.stdout.rstrip().endswith("204\n204\n204"), output
    assert elapsed < 30, f"the walk-through took {elapsed:.1f} s; keep it short\n{output}"
    assert not _receiver_answers(receiver_port), "the walk-through leaves its receiver running"
    listed = httpx.get(f"{server.base}/v1/integrations/", headers={"Authorization": f"Bearer {server.token}"})
    assert listed.json()["integrations"] == [], "the walk-through deletes what it creates"


@pytest.fixture
def receiver_module() -> Iterator[ModuleType]:
    """examples/webhook_receiver.py, imported from the checkout."""
    spec = importlib.util.spec_from_file_location("webhook_receiver", ROOT / "examples" / "webhook_receiver.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["webhook_receiver"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["webhook_receiver"]


def test_the_example_receiver_verifies_and_drops_duplicates(receiver_module: ModuleType, tmp_path: Path) -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    out = tmp_path / "events.jsonl"
    server = receiver_module.Receiver(("127.0.0.1", 0), Webhook(secret), out)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/webhooks"
    try:
        body = json.dumps({"id": "evt_1", "type": "order.created", "timestamp": "2025-01-31T12:00:00Z", "data": {}})
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": "evt_1",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign("evt_1", now, body),
        }
        assert httpx.post(url, content=body, headers=headers).status_code == 204
        assert httpx.post(url, content=body, headers=headers).status_code == 204  # a duplicate: kept once
        forged = {**headers, "webhook-signature": Webhook("whsec_" + "A" * 32).sign("evt_1", now, body)}
        assert httpx.post(url, content=body, headers=forged).status_code == 400
        assert httpx.post(url, content=body, headers={**headers, "webhook-signature": "garbage"}).status_code == 400
        assert httpx.post(url, content=body.replace("{}", '{"x": 1}'), headers=headers).status_code == 400
        assert httpx.get(url.removesuffix("/webhooks") + "/").status_code == 200
    finally:
        server.shutdown()
        server.server_close()
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == ["evt_1"]


@pytest.mark.parametrize("path", ["/docs", "/docs/swagger", "/docs/openapi.json"])
def test_the_api_docs_are_where_the_readme_says(server: Server, path: str) -> None:
    assert f"http://127.0.0.1:8000{path}>" in README
    response = httpx.get(server.base + path, timeout=5)
    assert response.status_code == 200, response.text
