"""As a new user would try it (README, "Trying a whole flow"): ``interlink emulate stripe`` and ``interlink
emulate klaviyo`` running, ``interlink serve`` running, a Stripe and a Klaviyo integration configured through
the API; a Stripe ``invoice.paid`` webhook posted to ``/v1/hooks/{id}`` arrives at the Klaviyo emulator as an
event, and shows in both integrations' event logs."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.pipeline_helpers import wait_for
from tests.server import free_port, running_server, stop_process_group


@contextmanager
def emulating(service: str) -> Iterator[dict[str, str]]:
    """Run ``interlink emulate SERVICE`` and read what it prints: base URL, API key, webhook secret."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "interlink.cli", "emulate", service, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        printed: dict[str, str] = {}
        deadline = time.monotonic() + 20
        while len(printed) < 3 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            name, _, value = line.strip().partition(":")
            if name in ("baseUrl", "API key", "webhook secret"):
                printed[name] = value.strip()
        assert len(printed) == 3, f"interlink emulate {service} printed {printed}"
        wait_for(lambda: _answers(printed["baseUrl"]))
        yield printed
    finally:
        stop_process_group(proc)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/_emulator/requests", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _create(base: str, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{base}/v1/integrations", json=body, headers=auth)
    assert response.status_code == 201, response.text
    integration: dict[str, Any] = response.json()["integration"]
    return integration


def _events(base: str, auth: dict[str, str], integration_id: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{base}/v1/integrations/events/filter", json={"integrationId": integration_id}, headers=auth)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def test_a_stripe_webhook_reaches_klaviyo(tmp_path: Path) -> None:
    with emulating("stripe") as stripe, emulating("klaviyo") as klaviyo, running_server(tmp_path / "data") as server:
        base, auth = server.base_url, {"Authorization": f"Bearer {server.token}"}
        source = _create(
            base,
            auth,
            {
                "service": "stripe",
                "name": "Stripe",
                "settings": {
                    "apiKey": stripe["API key"],
                    "webhookSecret": stripe["webhook secret"],
                    "baseUrl": stripe["baseUrl"],
                },
            },
        )
        destination = _create(
            base,
            auth,
            {
                "service": "klaviyo",
                "name": "Klaviyo",
                "settings": {"apiKey": klaviyo["API key"], "baseUrl": klaviyo["baseUrl"]},
                "synchronizations": [{"eventType": "invoice.paid"}],
            },
        )
        invoice = {"object": "invoice", "customer": "cus_42", "customer_email": "ada@example.com", "amount_paid": 1999}
        invoice["currency"] = "usd"
        sent = httpx.post(
            f"{stripe['baseUrl']}/_emulator/events",
            json={"type": "invoice.paid", "object": invoice, "webhook_url": f"{base}/v1/hooks/{source['id']}"},
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["webhook_status"] == 200, sent.text
        stripe_event_id = sent.json()["event"]["id"]

        def arrived() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = httpx.get(f"{klaviyo['baseUrl']}/_emulator/events").json()["events"]
            return found

        tracked = wait_for(arrived, timeout=30)
        assert len(tracked) == 1
        assert tracked[0]["metric"] == "invoice.paid"
        assert tracked[0]["profile"]["email"] == "ada@example.com"
        assert tracked[0]["value"] == 19.99
        assert tracked[0]["properties"]["source_event_id"] == stripe_event_id

        inbound = _events(base, auth, source["id"])
        assert [(e["direction"], e["event_type"], e["status"]) for e in inbound] == [
            ("inbound", "invoice.paid", "succeeded")
        ]
        outbound = wait_for(lambda: [e for e in _events(base, auth, destination["id"]) if e["status"] == "succeeded"])
        assert [(e["direction"], e["event_type"]) for e in outbound] == [("outbound", "invoice.paid")]
        assert outbound[0]["payload_ref"] == inbound[0]["payload_ref"]

        # Stripe retries the same event, and someone replays a tampered copy: nothing new arrives anywhere.
        body = json.dumps(sent.json()["event"]).encode()
        hook = f"{base}/v1/hooks/{source['id']}"
        retried = httpx.post(hook, content=body, headers={"Stripe-Signature": sign(body, stripe["webhook secret"])})
        assert retried.status_code == 200, retried.text
        tampered = body.replace(b"1999", b"1")
        forged = httpx.post(hook, content=tampered, headers={"Stripe-Signature": sign(body, stripe["webhook secret"])})
        assert forged.status_code == 401
        assert forged.headers["content-type"].startswith("application/problem+json")
        wait_for(lambda: all(h["status"] != "received" for h in _hooks(base, auth, source["id"])))
        assert len(_events(base, auth, source["id"])) == 1
        assert len(arrived()) == 1


def sign(body: bytes, secret: str) -> str:
    """A ``Stripe-Signature`` header value, signed now, as Stripe computes it."""
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def _hooks(base: str, auth: dict[str, str], integration_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(f"{base}/v1/integrations/{integration_id}/hooks", headers=auth).json()[
        "hooks"
    ]
    return found
