"""The emulator of a ``custom`` integration's far end: the tenant's endpoint, and the system posting to it.

Deliveries are answered ``200`` and kept in :attr:`CustomEmulator.deliveries`; the webhooks it sends
carry the integration's inbound key as a Bearer token, as a tenant's own system would.
"""

from __future__ import annotations

import json
from typing import Any

from interlink.testing.emulators.base import Emulator, Request, Response

__all__ = ["CustomEmulator"]


class CustomEmulator(Emulator):
    """Any path, any method: ``200 {"ok": true}``. ``webhook_secret`` stands for the integration's inbound key."""

    service = "custom"
    default_webhook_secret = "ik_emulated_inbound_key_0123456789abcdef"  # noqa: S105 - a test value
    webhook_signed = False  # a Bearer key does not cover the body
    webhook_timestamped = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deliveries: list[Request] = []

    def authenticate(self, request: Request) -> Response | None:
        return None  # the tenant's endpoint checks the Standard Webhooks signature itself, if it wants

    def route(self, request: Request) -> Response:
        with self.lock:
            self.deliveries.append(request)
        return Response(200, {"ok": True})

    def integration_settings(self) -> dict[str, Any]:
        return {"url": f"{self.url}/webhooks"}

    def webhook_headers(self, body: bytes, *, secret: str | None = None, sent_at: int | None = None) -> dict[str, str]:
        return {"content-type": "application/json", "authorization": f"Bearer {secret or self.webhook_secret}"}

    def sample_webhook(self) -> bytes:
        event = {"id": "order_1001", "type": "order.created", "data": {"order_id": 1001, "total": "19.99"}}
        return json.dumps(event).encode()
