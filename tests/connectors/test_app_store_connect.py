"""The App Store Connect connector against its emulator, over real HTTP.

Decisions these tests pin down (see plugins/app_store_connect):

* every request carries a new ES256 token (kid, iss, aud, bid, exp at most 5 minutes ahead);
* ``check`` and ``sync`` read the notification history; the sync walks one time window per run, page by page,
  checkpointing the pagination token, and the next window starts 10 minutes before the last one ended;
* a notification is verified by its signature alone: the x5c chain must lead to a trusted root
  (``settings.rootCertificates``, Apple Root CA - G3 when unset), the payload must be this app's and at
  most 10 minutes old when it arrives.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from interlink.connector import ConnectorContext, PermanentError, TransientError, WebhookRequest
from interlink.http import recording_client
from interlink.plugins.app_store_connect import AppStoreConnectConnector
from interlink.testing.emulators.app_store import AppStoreEmulator
from tests.connectors.helpers import Run, sync_run
from tests.sink import running_sink


@pytest.fixture
def emulator() -> Iterator[AppStoreEmulator]:
    with AppStoreEmulator() as emu:
        yield emu


def context(values: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> ConnectorContext:
    return ConnectorContext(
        integration_id="int_test",
        settings=dict(values),
        http=recording_client(secrets=[str(values.get("privateKey") or "")]),
        logger=logging.getLogger("interlink.connector.app_store_connect"),
        state=json.loads(json.dumps(dict(state or {}))),
    )


def settings(emu: AppStoreEmulator, **extra: Any) -> dict[str, Any]:
    return {**emu.integration_settings(), **extra}


def sync(ctx: ConnectorContext, *, stop_after: int | None = None) -> Run:
    return sync_run(AppStoreConnectConnector(), ctx, stop_after=stop_after)


def uuids(emu: AppStoreEmulator) -> set[str]:
    found = set()
    for _, signed in emu._history:
        found.add(json.loads(base64.urlsafe_b64decode(signed.split(".")[1] + "==="))["notificationUUID"])
    return found


def hook(body: bytes, received_at: datetime | None = None) -> WebhookRequest:
    return WebhookRequest(
        "POST", "/v1/hooks/int_test", {"content-type": "application/json"}, body, received_at or datetime.now(UTC)
    )


def notification_body(emu: AppStoreEmulator, payload: dict[str, Any], **sign: Any) -> bytes:
    return json.dumps({"signedPayload": emu.sign(payload, **sign)}).encode()


def verify(values: Mapping[str, Any], request: WebhookRequest) -> None:
    AppStoreConnectConnector().verify_webhook(context(values), request)


# -- check and the token --


def test_check_reads_the_history_with_a_fresh_es256_token(emulator: AppStoreEmulator) -> None:
    assert AppStoreConnectConnector().check(context(settings(emulator))).ok
    seen = emulator.received[-1]
    assert (seen.method, seen.path.split("?")[0]) == ("POST", "/inApps/v1/notifications/history")
    token = seen.headers["authorization"].removeprefix("Bearer ")
    header, claims = (json.loads(base64.urlsafe_b64decode(p + "===")) for p in token.split(".")[:2])
    assert header == {"alg": "ES256", "kid": emulator.key_id, "typ": "JWT"}
    assert claims["iss"] == emulator.issuer_id
    assert claims["aud"] == "appstoreconnect-v1"
    assert claims["bid"] == emulator.bundle_id
    assert 0 < claims["exp"] - claims["iat"] <= 300


def test_a_key_apple_does_not_know_is_refused_naming_the_private_key(emulator: AppStoreEmulator) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(PermanentError) as caught:
        AppStoreConnectConnector().check(context(settings(emulator, privateKey=other.decode())))
    assert caught.value.setting == "privateKey"
    assert "HTTP 401" in caught.value.message
    assert "settings.keyId" in caught.value.message
    assert emulator.received[-1].headers["authorization"].startswith("Bearer ")


@pytest.mark.parametrize("pem", ["-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----", ""])
def test_an_unreadable_private_key_is_refused_before_any_request(emulator: AppStoreEmulator, pem: str) -> None:
    with pytest.raises(PermanentError) as caught:
        AppStoreConnectConnector().check(context(settings(emulator, privateKey=pem)))
    assert caught.value.setting == "privateKey"
    assert not emulator.received


def test_another_key_id_is_refused(emulator: AppStoreEmulator) -> None:
    with pytest.raises(PermanentError) as caught:
        AppStoreConnectConnector().check(context(settings(emulator, keyId="ZZZZZZZZZZ")))
    assert caught.value.setting == "privateKey"


# -- sync --


def test_sync_pages_the_history_window_to_the_end(emulator: AppStoreEmulator) -> None:
    emulator.seed_records(45)
    result = sync(context(settings(emulator)))
    assert sorted(result.ids) == sorted(uuids(emulator))
    assert len(result.ids) == 45
    pages = [r for r in emulator.received if r.path.startswith("/inApps/v1/notifications/history")]
    assert len(pages) == 3  # 20, 20, 5
    assert "paginationToken" not in pages[0].path
    assert all("paginationToken=" in p.path for p in pages[1:])
    windows = {(json.loads(p.body)["startDate"], json.loads(p.body)["endDate"]) for p in pages}
    assert len(windows) == 1  # the same window on every page
    (start, end) = windows.pop()
    assert end - start == pytest.approx((timedelta(days=180) - timedelta(hours=1)).total_seconds() * 1000, abs=5000)
    states = [state for _, state in result.checkpoints]
    assert [n for n, _ in result.checkpoints] == [20, 40, 45]
    assert all(s["paginationToken"] and (s["startDate"], s["endDate"]) == (start, end) for s in states[:2])
    assert states[-1] == {"startDate": end - 600_000}
    assert not any("idempotency-key" in r.headers for r in emulator.received)


def test_records_are_envelopes_of_the_decoded_notification(emulator: AppStoreEmulator) -> None:
    payload = emulator.notification("DID_RENEW", None, signed_ms=int(datetime.now(UTC).timestamp() * 1000) - 60_000)
    emulator.add_notification(payload)
    [record] = sync(context(settings(emulator))).records
    tx = json.loads(base64.urlsafe_b64decode(payload["data"]["signedTransactionInfo"].split(".")[1] + "==="))
    assert record["id"] == payload["notificationUUID"]
    assert record["type"] == "DID_RENEW"
    assert record["source"] == "app_store_connect"
    assert record["subject"] == {"id": tx["originalTransactionId"], "external_id": tx["appAccountToken"]}
    assert record["data"]["amount"] == 999  # Apple's 9990 thousandths
    assert record["data"]["currency"] == "USD"
    assert record["data"]["product_id"] == "premium_monthly"
    assert record["data"]["auto_renew_status"] == 1
    assert record["raw"]["data"]["transactionInfo"] == tx
    assert "signedTransactionInfo" not in record["raw"]["data"]


def test_sync_resumes_from_a_page_checkpoint_and_the_next_window_follows(emulator: AppStoreEmulator) -> None:
    emulator.seed_records(45)
    full = sync(context(settings(emulator)))
    cut = sync(context(settings(emulator)), stop_after=1)
    resumed = sync(context(settings(emulator), cut.checkpoints[-1][1]))
    assert set(cut.ids) | set(resumed.ids) == set(full.ids)
    assert len(resumed.ids) == 25
    # the next run reads from 10 minutes before the last window's end: only what came since
    fresh = emulator.notification("EXPIRED", "VOLUNTARY")
    emulator.add_notification(fresh)
    following = sync(context(settings(emulator), full.checkpoints[-1][1]))
    assert following.ids == [fresh["notificationUUID"]]


def test_a_refused_pagination_token_reads_the_window_again(emulator: AppStoreEmulator) -> None:
    emulator.seed_records(25)
    first = sync(context(settings(emulator)), stop_after=1)
    state = {**first.checkpoints[-1][1], "paginationToken": "bm90LWEtdG9rZW4="}
    again = sync(context(settings(emulator), state))
    assert len(again.ids) == 25


def test_a_saved_window_older_than_apples_retention_starts_at_the_oldest_date(emulator: AppStoreEmulator) -> None:
    emulator.seed_records(3)
    result = sync(context(settings(emulator), {"startDate": 1_000, "endDate": 2_000, "paginationToken": "x"}))
    assert len(result.ids) == 3


def test_429_is_transient_with_retry_after_and_5xx_transient_and_4xx_permanent(emulator: AppStoreEmulator) -> None:
    emulator.seed_records(3)
    connector = AppStoreConnectConnector()
    emulator.fail_next(1, 429, {"errorCode": 4290000, "errorMessage": "Rate limit exceeded."}, {"Retry-After": "7"})
    with pytest.raises(TransientError) as limited:
        sync(context(settings(emulator)))
    assert limited.value.delay == 7
    emulator.fail_next(1, 429)  # Apple's own 429 carries no Retry-After
    with pytest.raises(TransientError):
        connector.check(context(settings(emulator)))
    emulator.fail_next(1, 503)
    with pytest.raises(TransientError):
        connector.check(context(settings(emulator)))
    emulator.fail_next(1, 404, {"errorCode": 4040002, "errorMessage": "Account not found. Please try again."})
    with pytest.raises(TransientError):
        connector.check(context(settings(emulator)))
    emulator.fail_next(1, 400, {"errorCode": 4000000, "errorMessage": "Invalid request."})
    with pytest.raises(PermanentError) as rejected:
        sync(context(settings(emulator)))
    assert "4000000" in rejected.value.message
    assert len(sync(context(settings(emulator))).ids) == 3


def test_a_base_url_that_is_not_the_api_names_the_base_url(emulator: AppStoreEmulator) -> None:
    with pytest.raises(PermanentError) as caught:
        AppStoreConnectConnector().check(context(settings(emulator, baseUrl=emulator.url + "/elsewhere")))
    assert caught.value.setting == "baseUrl"


# -- webhooks --


def test_a_genuine_notification_is_accepted_and_parsed(emulator: AppStoreEmulator) -> None:
    payload = emulator.notification("SUBSCRIBED", "INITIAL_BUY")
    request = hook(notification_body(emulator, payload))
    verify(settings(emulator), request)
    result = AppStoreConnectConnector().handle_webhook(context(settings(emulator)), request)
    [event] = result.events
    assert (event["id"], event["type"]) == (payload["notificationUUID"], "SUBSCRIBED")
    assert event["data"]["subtype"] == "INITIAL_BUY"
    assert event["data"]["environment"] == "Production"


def test_a_changed_payload_is_refused(emulator: AppStoreEmulator) -> None:
    jws = emulator.sign(emulator.notification())
    head, body, signature = jws.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "==="))
    payload["notificationType"] = "REFUND"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(PermanentError) as caught:
        verify(settings(emulator), hook(json.dumps({"signedPayload": f"{head}.{forged}.{signature}"}).encode()))
    assert caught.value.setting == "rootCertificates"
    assert "signature" in caught.value.message


def test_a_chain_to_another_root_is_refused(emulator: AppStoreEmulator) -> None:
    with AppStoreEmulator() as impostor:  # its own root, intermediate, leaf and OIDs: only the root differs
        body = notification_body(impostor, impostor.notification())
    with pytest.raises(PermanentError) as caught:
        verify(settings(emulator), hook(body))
    assert caught.value.setting == "rootCertificates"
    assert "trusted root" in caught.value.message


def test_apples_root_is_the_default_and_refuses_the_emulators_chain(emulator: AppStoreEmulator) -> None:
    values = {k: v for k, v in settings(emulator).items() if k != "rootCertificates"}
    with pytest.raises(PermanentError) as caught:
        verify(values, hook(notification_body(emulator, emulator.notification())))
    assert caught.value.setting == "rootCertificates"


def test_a_leaf_key_that_is_not_the_certificates_is_refused(emulator: AppStoreEmulator) -> None:
    body = notification_body(emulator, emulator.notification(), key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(PermanentError):
        verify(settings(emulator), hook(body))


def test_a_chain_of_two_certificates_is_refused(emulator: AppStoreEmulator) -> None:
    body = notification_body(emulator, emulator.notification(), chain=emulator.chain[:2])
    with pytest.raises(PermanentError) as caught:
        verify(settings(emulator), hook(body))
    assert "x5c" in caught.value.message


def test_a_stale_notification_is_refused_and_a_recent_one_accepted(emulator: AppStoreEmulator) -> None:
    now = datetime.now(UTC)
    body = notification_body(emulator, emulator.notification(signed_ms=int(now.timestamp() * 1000)))
    verify(settings(emulator), hook(body, now + timedelta(minutes=9)))
    with pytest.raises(PermanentError) as caught:
        verify(settings(emulator), hook(body, now + timedelta(minutes=11)))
    assert "signed 11 minutes before it arrived" in caught.value.message
    with pytest.raises(PermanentError):
        verify(settings(emulator), hook(body, now - timedelta(minutes=6)))  # signed in the future


@pytest.mark.parametrize(
    ("change", "setting"),
    [({"bundle_id": "com.example.other"}, "bundleId"), ({"environment": "Sandbox"}, "environment")],
)
def test_a_notification_for_another_app_or_environment_names_the_setting(
    emulator: AppStoreEmulator, change: dict[str, str], setting: str
) -> None:
    body = notification_body(emulator, emulator.notification(**change))
    with pytest.raises(PermanentError) as caught:
        verify(settings(emulator), hook(body))
    assert caught.value.setting == setting


def test_another_app_apple_id_is_refused_on_production(emulator: AppStoreEmulator) -> None:
    body = notification_body(emulator, emulator.notification())
    with pytest.raises(PermanentError) as caught:
        verify(settings(emulator, appAppleId=42), hook(body))
    assert caught.value.setting == "appAppleId"


@pytest.mark.parametrize(
    "body", [b"not json", b"{}", b'{"notificationType": "DID_RENEW"}', b'{"signedPayload": "a.b"}']
)
def test_bodies_that_are_not_v2_notifications_are_refused(emulator: AppStoreEmulator, body: bytes) -> None:
    with pytest.raises(PermanentError):
        verify(settings(emulator), hook(body))


def test_the_emulator_sends_a_notification_the_connector_accepts(emulator: AppStoreEmulator) -> None:
    with running_sink() as sink:
        answer = emulator.send_notification(sink.url("/hook"), emulator.notification("TEST", None))
        assert answer.status_code == 200
        [received] = sink.at("/hook")
    verify(settings(emulator), hook(received.body))
    assert len(uuids(emulator)) == 1  # filed in the history as Apple does
