"""The Google Play connector against its emulator, over real HTTP.

Decisions these tests pin down (see plugins/google_play):

* a service-account JWT grant at the key file's ``token_uri`` gets the access token; a refused grant or an
  unreadable key file names ``serviceAccountJson``;
* ``sync`` reads voided purchases (in-app and subscriptions) one time window per run, 100 per page,
  checkpointing Google's page token; the next window starts 10 minutes before the last one ended;
* a push is accepted on the Pub/Sub OIDC token alone (RS256, ``aud``, ``email``, ``exp`` against
  ``received_at``), with keys from ``pushCertificates`` (no network) or ``pushCertificatesUrl`` (read once,
  kept for Google's max-age); the token does not cover the body.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from interlink.connector import ConnectorContext, PermanentError, TransientError, WebhookRequest
from interlink.http import recording_client
from interlink.plugins.google_play import GooglePlayConnector
from interlink.testing.emulators.google_play import GooglePlayEmulator
from tests.connectors.helpers import Run, sync_run
from tests.sink import running_sink


@pytest.fixture(scope="module")
def shared() -> Iterator[GooglePlayEmulator]:
    with GooglePlayEmulator() as emu:  # RSA keys take a moment to make: one emulator for the module
        yield emu


@pytest.fixture
def emulator(shared: GooglePlayEmulator) -> GooglePlayEmulator:
    with shared.lock:
        shared.voided.clear()
        shared._subscription.clear()
    shared.clear()
    shared.max_results = 1000
    return shared


def context(values: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> ConnectorContext:
    return ConnectorContext(
        integration_id="int_test",
        settings=dict(values),
        http=recording_client(secrets=[str(values.get("serviceAccountJson") or "")]),
        logger=logging.getLogger("interlink.connector.google_play"),
        state=json.loads(json.dumps(dict(state or {}))),
    )


def settings(emu: GooglePlayEmulator, **extra: Any) -> dict[str, Any]:
    return {**emu.integration_settings(), **extra}


def sync(ctx: ConnectorContext, *, stop_after: int | None = None) -> Run:
    return sync_run(GooglePlayConnector(), ctx, stop_after=stop_after)


def api_requests(emu: GooglePlayEmulator) -> list[str]:
    return [r.path for r in emu.received if r.path.startswith("/androidpublisher/")]


def push(emu: GooglePlayEmulator, received_at: datetime | None = None, **token: Any) -> WebhookRequest:
    body = emu.push_body()
    headers = {"content-type": "application/json", "authorization": f"Bearer {emu.push_token(**token)}"}
    return WebhookRequest("POST", "/v1/hooks/int_conformance", headers, body, received_at or datetime.now(UTC))


def verify(values: Mapping[str, Any], request: WebhookRequest) -> None:
    GooglePlayConnector().verify_webhook(context(values), request)


# -- check and the token --


def test_check_gets_a_token_and_lists_one_voided_purchase(emulator: GooglePlayEmulator) -> None:
    assert GooglePlayConnector().check(context(settings(emulator))).ok
    grant, listing = emulator.received[-2:]
    assert (grant.method, grant.path) == ("POST", "/token")
    form = dict(p.split("=", 1) for p in grant.body.decode().split("&"))
    assert form["grant_type"] == "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
    claims = json.loads(base64.urlsafe_b64decode(form["assertion"].split(".")[1] + "==="))
    assert claims["iss"] == emulator.client_email
    assert claims["aud"] == emulator.token_uri
    assert claims["exp"] - claims["iat"] == 3600
    assert "maxResults=1" in listing.path
    assert listing.headers["authorization"].startswith("Bearer ya29.emu-")


def test_a_key_google_does_not_know_names_the_service_account_setting(emulator: GooglePlayEmulator) -> None:
    revoked = emulator.service_account_json(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(PermanentError) as caught:
        GooglePlayConnector().check(context(settings(emulator, serviceAccountJson=revoked)))
    assert caught.value.setting == "serviceAccountJson"
    assert "HTTP 400" in caught.value.message
    assert not api_requests(emulator)


@pytest.mark.parametrize(
    "value", ["{not json", '{"client_email": "a@b.c"}', '{"client_email": "a", "private_key": "x"}']
)
def test_an_unreadable_key_file_is_refused_before_any_request(emulator: GooglePlayEmulator, value: str) -> None:
    with pytest.raises(PermanentError) as caught:
        GooglePlayConnector().check(context(settings(emulator, serviceAccountJson=value)))
    assert caught.value.setting == "serviceAccountJson"
    assert not emulator.received


def test_a_refused_permission_and_an_unknown_app_name_their_settings(emulator: GooglePlayEmulator) -> None:
    emulator.fail_next(
        1,
        403,
        {"error": {"code": 403, "message": "The current user has insufficient permissions."}},
        when=lambda r: r.path.startswith("/androidpublisher/"),
    )
    with pytest.raises(PermanentError) as forbidden:
        GooglePlayConnector().check(context(settings(emulator)))
    assert forbidden.value.setting == "serviceAccountJson"
    assert "View financial data" in forbidden.value.message
    with pytest.raises(PermanentError) as unknown:
        GooglePlayConnector().check(context(settings(emulator, packageName="com.example.other")))
    assert unknown.value.setting == "packageName"


def test_a_refused_access_token_is_renewed_once(emulator: GooglePlayEmulator) -> None:
    emulator.fail_next(1, 401, when=lambda r: r.path.startswith("/androidpublisher/"))
    assert GooglePlayConnector().check(context(settings(emulator))).ok
    assert [r.path for r in emulator.received].count("/token") == 2
    emulator.fail_next(2, 401, when=lambda r: r.path.startswith("/androidpublisher/"))
    with pytest.raises(PermanentError) as caught:
        GooglePlayConnector().check(context(settings(emulator)))
    assert caught.value.setting == "serviceAccountJson"


# -- sync --


def test_sync_pages_voided_purchases_to_the_end(emulator: GooglePlayEmulator) -> None:
    emulator.seed_records(250)
    result = sync(context(settings(emulator)))
    assert len(result.ids) == len(set(result.ids)) == 250
    pages = api_requests(emulator)
    assert len(pages) == 3  # 100, 100, 50
    assert all("type=1" in p and "maxResults=100" in p for p in pages)
    assert "token=" not in pages[0]
    assert all("token=" in p for p in pages[1:])
    assert [n for n, _ in result.checkpoints] == [100, 200, 250]
    first, _, last = (state for _, state in result.checkpoints)
    assert first["token"]
    assert last == {"startTime": first["endTime"] - 600_000}


def test_records_are_envelopes_of_the_voided_purchase(emulator: GooglePlayEmulator) -> None:
    item = emulator.add_voided(voided_ms=int(datetime.now(UTC).timestamp() * 1000) - 5000, voidedReason=7)
    [record] = sync(context(settings(emulator))).records
    assert record["id"] == f"voided:{item['orderId']}:{item['voidedTimeMillis']}"
    assert record["type"] == "VOIDED_PURCHASE"
    assert record["subject"] == {"id": item["purchaseToken"]}
    assert record["data"]["voided_reason"] == "chargeback"
    assert record["data"]["voided_source"] == "user"
    assert record["raw"] == item


def test_sync_resumes_from_a_page_checkpoint_and_the_next_window_follows(emulator: GooglePlayEmulator) -> None:
    emulator.seed_records(250)
    full = sync(context(settings(emulator)))
    cut = sync(context(settings(emulator)), stop_after=1)
    resumed = sync(context(settings(emulator), cut.checkpoints[-1][1]))
    assert set(cut.ids) | set(resumed.ids) == set(full.ids)
    assert len(resumed.ids) == 150
    fresh = emulator.add_voided()
    following = sync(context(settings(emulator), full.checkpoints[-1][1]))
    assert following.ids == [f"voided:{fresh['orderId']}:{fresh['voidedTimeMillis']}"]


def test_a_refused_page_token_reads_the_window_again(emulator: GooglePlayEmulator) -> None:
    emulator.seed_records(150)
    first = sync(context(settings(emulator)), stop_after=1)
    state = {**first.checkpoints[-1][1], "token": "bm90LWEtdG9rZW4="}
    assert len(sync(context(settings(emulator), state)).ids) == 150


def test_429_is_transient_with_retry_after_and_5xx_transient_and_4xx_permanent(emulator: GooglePlayEmulator) -> None:
    emulator.seed_records(3)
    api = lambda r: r.path.startswith("/androidpublisher/")  # noqa: E731 - faults for the API, not the grant
    emulator.fail_next(1, 429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}, {"Retry-After": "7"}, when=api)
    with pytest.raises(TransientError) as limited:
        sync(context(settings(emulator)))
    assert limited.value.delay == 7
    emulator.fail_next(1, 429, when=api)  # Google's own 429 carries no Retry-After
    with pytest.raises(TransientError):
        GooglePlayConnector().check(context(settings(emulator)))
    emulator.fail_next(1, 503, when=api)
    with pytest.raises(TransientError):
        sync(context(settings(emulator)))
    emulator.fail_next(1, 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "bad"}}, when=api)
    with pytest.raises(PermanentError) as rejected:
        sync(context(settings(emulator)))
    assert "INVALID_ARGUMENT" in rejected.value.message
    emulator.fail_next(1, 503, when=lambda r: r.path == "/token")
    with pytest.raises(TransientError):
        sync(context(settings(emulator)))
    assert len(sync(context(settings(emulator))).ids) == 3


# -- webhooks --


def test_a_genuine_push_is_accepted_and_parsed(emulator: GooglePlayEmulator) -> None:
    request = push(emulator)
    verify(settings(emulator), request)
    [event] = GooglePlayConnector().handle_webhook(context(settings(emulator)), request).events
    message = json.loads(request.body)["message"]
    notification = json.loads(base64.b64decode(message["data"]))
    assert event["id"] == message["messageId"]
    assert event["type"] == "SUBSCRIPTION_PURCHASED"
    assert event["subject"] == {"id": notification["subscriptionNotification"]["purchaseToken"]}
    assert event["data"]["notification_type"] == 4
    assert event["raw"] == notification


@pytest.mark.parametrize(
    ("kind", "code", "expected"),
    [
        ("subscription", 13, "SUBSCRIPTION_EXPIRED"),
        ("subscription", 99, "SUBSCRIPTION_NOTIFICATION_99"),
        ("oneTimeProduct", 2, "ONE_TIME_PRODUCT_CANCELED"),
        ("voidedPurchase", 0, "VOIDED_PURCHASE"),
        ("test", 0, "TEST_NOTIFICATION"),
    ],
)
def test_each_kind_of_notification_has_its_type(
    emulator: GooglePlayEmulator, kind: str, code: int, expected: str
) -> None:
    body = emulator.push_body(emulator.developer_notification(kind, code))
    request = WebhookRequest("POST", "/v1/hooks/int_test", {}, body)
    [event] = GooglePlayConnector().handle_webhook(context(settings(emulator)), request).events
    assert event["type"] == expected


def test_keys_are_read_from_the_certificates_url_once_and_kept(emulator: GooglePlayEmulator) -> None:
    values = {k: v for k, v in settings(emulator).items() if k != "pushCertificates"}
    for _ in range(3):
        verify(values, push(emulator))
    assert [r.path for r in emulator.received].count("/oauth2/v1/certs") == 1
    jwks = {**values, "pushCertificatesUrl": f"{emulator.url}/oauth2/v3/certs"}
    verify(jwks, push(emulator))


def test_pasted_keys_need_no_request(emulator: GooglePlayEmulator) -> None:
    verify(settings(emulator), push(emulator))
    assert not emulator.received


def test_a_token_signed_by_another_key_is_refused(emulator: GooglePlayEmulator) -> None:
    with pytest.raises(PermanentError) as caught:
        verify(settings(emulator), push(emulator, secret="another-key"))
    assert caught.value.setting == "pushCertificates"


@pytest.mark.parametrize(
    ("claims", "setting"),
    [
        ({"aud": "https://elsewhere.example/push"}, "pushAudience"),
        ({"email": "someone@other-project.iam.gserviceaccount.com"}, "pushServiceAccountEmail"),
        ({"email_verified": False}, "pushServiceAccountEmail"),
        ({"iss": "https://evil.example"}, "pushCertificates"),
    ],
)
def test_claims_of_another_subscription_are_refused(
    emulator: GooglePlayEmulator, claims: dict[str, Any], setting: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        verify(settings(emulator), push(emulator, **claims))
    assert caught.value.setting == setting


def test_without_an_audience_setting_the_audience_must_be_this_hook(emulator: GooglePlayEmulator) -> None:
    values = {k: v for k, v in settings(emulator).items() if k != "pushAudience"}
    verify(values, push(emulator, aud="https://interlink.example/v1/hooks/int_conformance"))
    with pytest.raises(PermanentError) as caught:
        verify(values, push(emulator, aud="https://interlink.example/v1/hooks/int_other"))
    assert caught.value.setting == "pushAudience"


def test_pushes_are_refused_until_the_push_account_is_set(emulator: GooglePlayEmulator) -> None:
    values = {k: v for k, v in settings(emulator).items() if k != "pushServiceAccountEmail"}
    with pytest.raises(PermanentError) as caught:
        verify(values, push(emulator))
    assert caught.value.setting == "pushServiceAccountEmail"


def test_an_expired_token_is_refused_and_a_fresh_one_accepted(emulator: GooglePlayEmulator) -> None:
    now = datetime.now(UTC)
    issued = int(now.timestamp())
    verify(settings(emulator), push(emulator, now + timedelta(minutes=59), issued=issued))
    with pytest.raises(PermanentError):
        verify(settings(emulator), push(emulator, now + timedelta(minutes=61), issued=issued))
    with pytest.raises(PermanentError):
        verify(settings(emulator), push(emulator, now - timedelta(minutes=6), issued=issued))  # issued in the future


def test_a_push_without_a_token_or_for_another_app_is_refused(emulator: GooglePlayEmulator) -> None:
    bare = WebhookRequest("POST", "/v1/hooks/int_conformance", {}, emulator.push_body())
    with pytest.raises(PermanentError) as missing:
        verify(settings(emulator), bare)
    assert missing.value.setting == "pushServiceAccountEmail"
    with pytest.raises(PermanentError) as other:
        verify(settings(emulator, packageName="com.example.other"), push(emulator))
    assert other.value.setting == "packageName"


def test_the_emulator_pushes_a_notification_the_connector_accepts(emulator: GooglePlayEmulator) -> None:
    with running_sink() as sink:
        assert emulator.send_push(sink.url("/hook")).status_code == 200
        [received] = sink.at("/hook")
    request = WebhookRequest("POST", "/v1/hooks/int_conformance", received.headers, received.body)
    verify(settings(emulator), request)
