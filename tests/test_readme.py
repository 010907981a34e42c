"""The README's walk-through works as written, against a real ``interlink serve``."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

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


def _walkthrough() -> str:
    assert README.count(START) == 1, f"README.md needs exactly one {START}"
    assert README.count(END) == 1, f"README.md needs exactly one {END}"
    section = README.split(START, 1)[1].split(END, 1)[0]
    blocks = re.findall(r"^```bash\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert blocks, "the walk-through has no ```bash blocks"
    return "\n".join(blocks)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


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
        _stop(process)


def test_every_curl_of_the_walkthrough_fails_on_an_http_error() -> None:
    calls = re.findall(r"\bcurl\b[^\n]*", _walkthrough())
    assert calls
    for call in calls:
        assert re.search(r"(--fail-with-body|--fail|\s-f\b|\s-[a-zA-Z]*f[a-zA-Z]*\b)", call), call


def test_the_variables_are_set_before_the_walkthrough() -> None:
    before = README.split(START, 1)[0]
    assert "BASE=http://127.0.0.1:8000\n" in before
    assert re.search(r"^TOKEN=il_\S+", before, flags=re.MULTILINE)


def test_the_walkthrough_runs_as_written(server: Server, tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + _walkthrough()
    env = dict(os.environ, BASE=server.base, TOKEN=server.token)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # python3 of this venv
    result = subprocess.run(
        ["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    assert '"status": "ok"' in result.stdout or '"status":"ok"' in result.stdout, output
    assert '"sync_stats"' in result.stdout, output
    assert '"status": "disconnected"' in result.stdout, output
    assert '"inbound_key": "ik_' in result.stdout, output
    assert result.stdout.rstrip().endswith("204\n204"), output
    listed = httpx.get(f"{server.base}/v1/integrations/", headers={"Authorization": f"Bearer {server.token}"})
    assert listed.json()["integrations"] == [], "the walk-through deletes what it creates"


@pytest.mark.parametrize("path", ["/docs", "/docs/swagger", "/docs/openapi.json"])
def test_the_api_docs_are_where_the_readme_says(server: Server, path: str) -> None:
    assert f"http://127.0.0.1:8000{path}>" in README
    response = httpx.get(server.base + path, timeout=5)
    assert response.status_code == 200, response.text
