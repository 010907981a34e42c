"""The default vendor emulator: an HTTP endpoint that answers 200 to every request and records it."""

from __future__ import annotations

import json
import threading

from interlink.testing._server import BackgroundServer, QuietHandler, SeenRequest

__all__ = ["EchoSink"]


class EchoSink:
    """Answers every request (any method, any path) ``200 {"ok": true}`` and keeps what it received.

    Use it as a context manager; :attr:`url` is its base URL. It is the suite's default emulator, good
    enough for connectors that only need a 2xx; write your own for a vendor whose answers you parse.
    """

    def __init__(self, status: int = 200, body: object | None = None) -> None:
        self.received: list[SeenRequest] = []
        self._lock = threading.Lock()
        payload = json.dumps({"ok": True} if body is None else body).encode()
        sink = self

        class Handler(QuietHandler):
            def handle_any(self) -> None:
                request = self.seen(self.read_body())
                with sink._lock:
                    sink.received.append(request)
                self.answer(status, [("content-type", "application/json")], payload)

        self._server = BackgroundServer(Handler)

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> EchoSink:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
