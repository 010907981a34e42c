"""A local Slack incoming-webhook emulator, for tests: no Slack workspace needed.

It answers as ``hooks.slack.com`` does: ``200 ok`` for a JSON object with a non-empty ``text`` posted
to the webhook's path, and plain-text error codes otherwise (``404 no_service`` for any other path,
``400 invalid_payload``, ``400 no_text``, ``404 channel_not_found``). Only the standard library::

    with SlackEmulator() as slack:
        httpx.post(slack.url, json={"text": "hello"})
        assert slack.messages == [{"text": "hello"}]
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["SlackEmulator"]


class SlackEmulator:
    """A Slack incoming webhook on ``127.0.0.1`` (a free port); a context manager.

    :attr:`url` is the webhook URL, its path the secret part (``/services/T.../B.../...``), as Slack's
    are. ``channels`` (when given) are the channels a ``channel`` override may name. Every accepted
    message is kept in :attr:`messages`.
    """

    def __init__(self, *, channels: Iterable[str] | None = None) -> None:
        self.path = f"/services/T00000000/B00000000/{secrets.token_urlsafe(18)}"
        self.channels = None if channels is None else set(channels)
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, answer = emulator._answer(self.path, body)
                self._send(status, answer)

            def do_GET(self) -> None:
                self._send(405, "invalid_method")

            def _send(self, status: int, text: str) -> None:
                payload = text.encode()
                self.send_response(status)
                self.send_header("content-type", "text/plain; charset=utf-8")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line holds the webhook's secret path

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        """The webhook URL to put in the ``webhookUrl`` setting."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def _answer(self, path: str, body: bytes) -> tuple[int, str]:
        if path.split("?", 1)[0].rstrip("/") != self.path:
            return 404, "no_service"
        try:
            message = json.loads(body)
        except ValueError:
            return 400, "invalid_payload"
        if not isinstance(message, dict):
            return 400, "invalid_payload"
        if not isinstance(message.get("text"), str) or not message["text"].strip():
            return 400, "no_text"
        channel = message.get("channel")
        if channel is not None and self.channels is not None and channel not in self.channels:
            return 404, "channel_not_found"
        with self._lock:
            self.messages.append(message)
        return 200, "ok"

    def __enter__(self) -> SlackEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
