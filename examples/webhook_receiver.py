"""A receiver for the events a custom integration delivers: verify each one, keep it, answer at once.

Interlink POSTs every event to a custom integration's ``url`` as JSON, signed per Standard Webhooks
(https://www.standardwebhooks.com): the headers ``webhook-id`` (the event id, the same on every attempt),
``webhook-timestamp`` and ``webhook-signature``. This script checks the signature with the integration's
signing secret (``whsec_...``, shown once when the integration is created), appends each verified event
to a file as one JSON line, and prints one line per event:

    python3 examples/webhook_receiver.py --port 8765 --secret whsec_... --out events.jsonl

(or ``WEBHOOK_SECRET=whsec_...`` in the environment instead of ``--secret``, out of sight of ``ps``).

It answers ``204`` to a verified event (Interlink records the delivery as ``succeeded``) and ``400`` to a
request whose signature does not verify (Interlink does not retry a ``4xx``). Delivery is at least once,
so an event already seen since the receiver started (same ``webhook-id``) is acknowledged but not written
twice. ``GET /`` answers ``200``, to check that the receiver is up.

Needs only the standard library and ``standardwebhooks`` (installed with Interlink; elsewhere
``pip install standardwebhooks``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY_BYTES = 5 * 1024 * 1024


class Receiver(ThreadingHTTPServer):
    """The HTTP server, with what every request needs: the verifier, the output file, the ids seen."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], webhook: Webhook, out: Path) -> None:
        super().__init__(address, Handler)
        self.webhook = webhook
        self.out = out
        self.seen: set[str] = set()
        self.lock = threading.Lock()  # requests are handled on several threads: one writer at a time

    def keep(self, webhook_id: str, payload: Any) -> bool:
        """Append ``payload`` to the output file; ``False`` when this ``webhook-id`` was kept already."""
        with self.lock:
            if webhook_id in self.seen:
                return False
            self.seen.add(webhook_id)
            with self.out.open("a", encoding="utf-8") as out:
                out.write(json.dumps(payload, ensure_ascii=False) + "\n")
            return True


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_GET(self) -> None:
        self._answer(200, b"webhook receiver: POST signed events here\n")

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self._answer(413 if length.isdigit() else 400, b"missing, malformed or oversized body\n")
            return
        body = self.rfile.read(int(length))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            payload = self.server.webhook.verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:  # ValueError: malformed headers or body
            print(f"rejected  {headers.get('webhook-id', '-')}: {exc}", flush=True)
            self._answer(400, b"signature verification failed\n")
            return
        webhook_id = headers["webhook-id"]
        if self.server.keep(webhook_id, payload):
            event = payload if isinstance(payload, dict) else {}
            print(f"received  {webhook_id}  {event.get('type')}  {json.dumps(event.get('data'))}", flush=True)
        else:
            print(f"duplicate {webhook_id}  (already kept)", flush=True)
        self._answer(204)

    def _answer(self, status: int, text: bytes = b"") -> None:
        self.send_response(status)
        if text:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: ``do_POST`` prints one line per event instead of one access-log line per request."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Receive and verify the events of an Interlink custom integration.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (default: %(default)s)")
    parser.add_argument(
        "--secret",
        default=os.environ.get("WEBHOOK_SECRET"),
        help="the integration's signing secret, whsec_... (default: $WEBHOOK_SECRET, which keeps it out of ps)",
    )
    parser.add_argument("--out", type=Path, default=Path("events.jsonl"), help="file to append events to")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("the signing secret is required: --secret whsec_... or WEBHOOK_SECRET=whsec_...")
    try:
        webhook = Webhook(args.secret)
    except Exception as exc:  # the library raises various errors for a secret that is not base64
        parser.error(f"--secret is not a valid signing secret ({type(exc).__name__}): expected whsec_...")
    with Receiver((args.host, args.port), webhook, args.out) as server:
        print(f"listening on http://{args.host}:{server.server_port}, appending to {args.out}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops it
            server.serve_forever()


if __name__ == "__main__":
    main()
