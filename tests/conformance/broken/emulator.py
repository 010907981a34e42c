"""The reference vendor of the conformance tests: a tiny API with a key, pages of records and signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from interlink.testing.emulators.base import Emulator, Request, Response

PAGE = 20


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, Stripe's scheme."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class ReferenceEmulator(Emulator):
    """``GET /me``, ``GET /records?after=N`` (pages of 20), ``POST /events``; webhooks signed with ``x-signature``."""

    service = "reference"
    default_api_key = "reference_key"
    default_webhook_secret = "reference_webhook_secret"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.records = 0

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return Response(401, {"error": "invalid api key"})

    def route(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/me":
            return Response(200, {"account": "reference"})
        if request.method == "GET" and request.path == "/records":
            after = int(request.arg("after") or 0)
            upto = min(after + PAGE, self.records)
            records = [
                {"id": f"rec_{n}", "type": "record.created", "n": n, "note": "x" * 2000} for n in range(after, upto)
            ]
            return Response(200, {"records": records, "next": upto if upto < self.records else None})
        if request.method == "POST" and request.path == "/events":
            return Response(202, {"ok": True})
        return Response(404, {"error": "not found"})

    def integration_settings(self) -> dict[str, Any]:
        return {"baseUrl": self.url, "apiKey": self.api_key, "webhookSecret": self.webhook_secret}

    def seed_records(self, count: int) -> None:
        self.records += count

    def webhook_headers(self, body: bytes, *, secret: str | None = None, sent_at: int | None = None) -> dict[str, str]:
        stamp = int(time.time()) if sent_at is None else sent_at
        signed = signature(secret or self.webhook_secret, stamp, body)
        return {"content-type": "application/json", "x-signature": signed}

    def sample_webhook(self) -> bytes:
        return json.dumps({"id": "whevt_1", "type": "record.created", "created": 1764000000, "data": {"n": 1}}).encode()
