"""Run the real ``interlink serve`` in a subprocess, on a free port, for tests that need real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


@dataclass
class Server:
    base_url: str
    output: list[str]
    """Every line the server printed (stdout and stderr) until it answered /health."""

    @property
    def token(self) -> str | None:
        """The token printed on the first start, if this start printed one."""
        for i, line in enumerate(self.output):
            if "shown only this once" in line:
                return next(x.strip() for x in self.output[i + 1 :] if x.strip())
        return None


def stop_process_group(proc: subprocess.Popen[Any], timeout: float = 15) -> None:
    """SIGTERM the process group of ``proc`` (started with ``start_new_session``); SIGKILL if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running_server(data_dir: Path, *, extra_env: dict[str, str] | None = None, timeout: float = 30) -> Iterator[Server]:
    """Start ``interlink serve`` with ``data_dir``; yield once /health answers; stop the process group."""
    port = free_port()
    env = {**os.environ, "INTERLINK_DATA_DIR": str(data_dir), **(extra_env or {})}
    if "INTERLINK_DATABASE_URL" not in (extra_env or {}):
        env.pop("INTERLINK_DATABASE_URL", None)  # the embedded default unless a test asks otherwise
    proc = subprocess.Popen(
        [sys.executable, "-m", "interlink.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    output: list[str] = []
    try:
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        while True:
            output.extend(line.rstrip("\n") for line in iter(proc.stdout.readline, ""))
            if proc.poll() is not None:
                raise RuntimeError("server exited early:\n" + "\n".join(output))
            try:
                if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer /health in time:\n" + "\n".join(output))
            time.sleep(0.1)
        yield Server(base_url=base_url, output=output)
    finally:
        stop_process_group(proc)
