"""An App Store Server API emulator (``vendors.md`` section 6), and Apple's signed notification sender.

What it follows:

* auth: ``Authorization: Bearer <ES256 JWT>`` whose header ``kid`` is the key id (:attr:`key_id`), claims
  ``iss`` (:attr:`issuer_id`), ``aud: appstoreconnect-v1``, ``bid`` (:attr:`bundle_id`) and an ``exp`` in the
  future and at most 60 minutes ahead, signed by the key whose PEM :attr:`private_key_pem` holds; anything
  else is a 401 with a plain-text body, as Apple answers;
* ``POST /inApps/v1/notifications/history`` (``paginationToken`` in the query; body ``startDate``/``endDate``
  in ms, optional ``notificationType``): 20 per page, oldest first, ``{notificationHistory: [{signedPayload,
  sendAttempts}], hasMore, paginationToken}``; errors ``{errorCode, errorMessage}``: 4000012 start more than
  180 days back, 4000013 start not before end, 4000014 a pagination token that is not this query's,
  4000015/4000016 dates that are not numbers;
* ``POST /inApps/v1/notifications/test``: records a TEST notification, ``{testNotificationToken}``;
* 429 ``{errorCode: 4290000}`` with no ``Retry-After`` (Apple documents none);
* signed data: every payload is an ES256 JWS whose ``x5c`` is a chain the emulator mints at start (root,
  intermediate with OID 1.2.840.113635.100.6.2.1, leaf with OID 1.2.840.113635.100.6.11.1). The root's PEM
  is :attr:`root_pem`: an integration trusts it through ``settings.rootCertificates``.

Apple authenticates notifications by their signature, not a header, so the emulator has no
``webhook_headers``: the conformance suite's header-based webhook checks are skipped and
``tests/connectors/test_app_store_connect.py`` checks verification instead. :meth:`send_notification`
posts ``{"signedPayload"}`` and files the notification in the history, as Apple does.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID

from interlink.testing.emulators.base import Emulator, Request, Response

__all__ = ["AppStoreEmulator"]

PAGE_SIZE = 20
RETENTION_MS = 180 * 86_400_000
_LEAF_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.11.1")
_INTERMEDIATE_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.2.1")
_TYPES = (("SUBSCRIBED", "INITIAL_BUY"), ("DID_RENEW", None), ("DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_DISABLED"))


def _payload_of(body: bytes) -> dict[str, Any]:
    """The decoded payload of the JWS in a ``{"signedPayload"}`` body."""
    part = json.loads(body)["signedPayload"].split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _error(status: int, code: int, message: str) -> Response:
    return Response(status, {"errorCode": code, "errorMessage": message})


def _unauthenticated() -> Response:
    return Response(401, b"Unauthenticated\n", content_type="text/plain")


def _certificate(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    oid: x509.ObjectIdentifier | None,
) -> x509.Certificate:
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Emulated Apple")]
    )
    issuer_name, issuer_key = issuer or (name, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, issuer_name),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Emulated Apple"),
                ]
            )
        )
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=365))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if oid is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, b"\x05\x00"), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class AppStoreEmulator(Emulator):
    """The App Store Server API of one app on 127.0.0.1; see the module docstring."""

    service: ClassVar[str] = "app_store_connect"
    default_api_key: ClassVar[str] = "2X9R4HXF34"
    """The key id (``kid``) of the In-App Purchase key the emulator accepts."""
    issuer_id: ClassVar[str] = "57246542-96fe-1a63-e053-0824d011072a"
    webhook_signed: ClassVar[bool] = True
    webhook_timestamped: ClassVar[bool] = True

    def __init__(
        self,
        *,
        api_key: str | None = None,
        webhook_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        bundle_id: str = "com.example.emulated",
        app_apple_id: int = 1234567890,
        environment: str = "Production",
    ) -> None:
        super().__init__(api_key=api_key, webhook_secret=webhook_secret, host=host, port=port)
        self.bundle_id = bundle_id
        self.app_apple_id = app_apple_id
        self.environment = environment
        self.api_key_private = ec.generate_private_key(ec.SECP256R1())
        root_key, intermediate_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        self.signing_key = ec.generate_private_key(ec.SECP256R1())
        root = _certificate("Emulated Root CA", root_key, None, ca=True, oid=None)
        intermediate = _certificate(
            "Emulated WWDR CA", intermediate_key, ("Emulated Root CA", root_key), ca=True, oid=_INTERMEDIATE_OID
        )
        leaf = _certificate(
            "Emulated StoreKit Signing",
            self.signing_key,
            ("Emulated WWDR CA", intermediate_key),
            ca=False,
            oid=_LEAF_OID,
        )
        self.chain = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in (leaf, intermediate, root)
        ]
        self.root_pem = root.public_bytes(serialization.Encoding.PEM).decode()
        self._history: list[tuple[int, str]] = []
        """``(first send attempt in ms, signedPayload)``, in order of time."""

    @property
    def key_id(self) -> str:
        return self.api_key

    @property
    def private_key_pem(self) -> str:
        """The In-App Purchase key (``AuthKey_<keyId>.p8``) the emulator accepts tokens of."""
        return self.api_key_private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    # -- signed data ------------------------------------------------------------------------------

    def sign(
        self, payload: dict[str, Any], *, key: ec.EllipticCurvePrivateKey | None = None, chain: list[str] | None = None
    ) -> str:
        """``payload`` as Apple signs it: an ES256 JWS with the x5c chain (another ``key``/``chain`` for forgeries)."""
        header = {"alg": "ES256", "x5c": chain or self.chain}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(payload).encode())}"
        r, s = decode_dss_signature((key or self.signing_key).sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def transaction(self, signed_ms: int, **fields: Any) -> dict[str, Any]:
        """A decoded transaction (JWSTransactionDecodedPayload) of a monthly subscription; ``fields`` override."""
        number = str(uuid.uuid4().int)[:15]
        return {
            "transactionId": number,
            "originalTransactionId": fields.pop("originalTransactionId", "1000000" + number[:8]),
            "webOrderLineItemId": number[::-1],
            "bundleId": self.bundle_id,
            "productId": "premium_monthly",
            "subscriptionGroupIdentifier": "21000000",
            "purchaseDate": signed_ms - 1000,
            "originalPurchaseDate": signed_ms - 1000,
            "expiresDate": signed_ms + 30 * 86_400_000,
            "quantity": 1,
            "type": "Auto-Renewable Subscription",
            "inAppOwnershipType": "PURCHASED",
            "signedDate": signed_ms,
            "environment": self.environment,
            "transactionReason": "PURCHASE",
            "storefront": "USA",
            "storefrontId": "143441",
            "price": 9990,
            "currency": "USD",
            "appAccountToken": "7e3fb20b-4cdb-47cc-936d-99d65f608138",
            **fields,
        }

    def notification(
        self,
        notification_type: str = "SUBSCRIBED",
        subtype: str | None = "INITIAL_BUY",
        *,
        signed_ms: int | None = None,
        bundle_id: str | None = None,
        environment: str | None = None,
        **transaction: Any,
    ) -> dict[str, Any]:
        """A decoded ResponseBodyV2DecodedPayload with signed transaction and renewal info."""
        signed = signed_ms if signed_ms is not None else int(time.time() * 1000)
        tx = self.transaction(signed, **transaction)
        renewal = {
            "originalTransactionId": tx["originalTransactionId"],
            "autoRenewProductId": tx["productId"],
            "productId": tx["productId"],
            "autoRenewStatus": 1,
            "signedDate": signed,
            "environment": environment or self.environment,
        }
        payload: dict[str, Any] = {
            "notificationType": notification_type,
            "notificationUUID": str(uuid.uuid4()),
            "data": {
                "appAppleId": self.app_apple_id,
                "bundleId": bundle_id or self.bundle_id,
                "bundleVersion": "42",
                "environment": environment or self.environment,
                "signedTransactionInfo": self.sign(tx),
                "signedRenewalInfo": self.sign(renewal),
                "status": 1,
            },
            "version": "2.0",
            "signedDate": signed,
        }
        if subtype is not None:
            payload["subtype"] = subtype
        return payload

    def add_notification(self, payload: dict[str, Any], *, sent_ms: int | None = None) -> str:
        """File a notification in the history (sent at ``sent_ms``, default its ``signedDate``); its JWS."""
        signed = self.sign(payload)
        at = sent_ms if sent_ms is not None else int(payload["signedDate"])
        with self.lock:
            self._history.append((at, signed))
            self._history.sort(key=lambda item: item[0])
        return signed

    def send_notification(self, url: str, payload: dict[str, Any]) -> httpx.Response:
        """POST ``{"signedPayload"}`` to ``url`` as Apple does, and file the notification in the history."""
        signed = self.add_notification(payload)
        with httpx.Client(timeout=30.0) as client:
            return client.post(url, json={"signedPayload": signed}, headers={"User-Agent": "App Store"})

    def control(self, request: Request) -> Response | None:
        """``POST /_emulator/notifications`` with ``{"notificationType", "subtype"?, "webhook_url"?}``: file a
        signed notification in the history, and send it to ``webhook_url`` when given (the answer carries
        its status)."""
        if request.method == "POST" and request.path == "/_emulator/notifications":
            try:
                wanted = request.json()
            except ValueError:
                wanted = None
            if not isinstance(wanted, dict) or not isinstance(wanted.get("notificationType"), str):
                return Response(400, {"error": 'send {"notificationType": "DID_RENEW", "subtype"?, "webhook_url"?}'})
            subtype = wanted.get("subtype") if isinstance(wanted.get("subtype"), str) else None
            payload = self.notification(wanted["notificationType"], subtype)
            answer: dict[str, Any] = {"notification": payload}
            if isinstance(wanted.get("webhook_url"), str):
                try:
                    answer["webhook_status"] = self.send_notification(wanted["webhook_url"], payload).status_code
                except httpx.HTTPError as exc:
                    answer["webhook_error"] = f"{type(exc).__name__}: {exc}"
            else:
                self.add_notification(payload)
            return Response(200, answer)
        return super().control(request)

    # -- what the conformance suite asks ----------------------------------------------------------

    def integration_settings(self) -> dict[str, Any]:
        return {
            "baseUrl": self.url,
            "issuerId": self.issuer_id,
            "keyId": self.key_id,
            "privateKey": self.private_key_pem,
            "bundleId": self.bundle_id,
            "appAppleId": self.app_apple_id,
            "environment": self.environment,
            "rootCertificates": self.root_pem,
        }

    def sample_webhook(self) -> bytes:
        return json.dumps({"signedPayload": self.sign(self.notification())}).encode()

    def webhook_request(
        self, body: bytes, *, secret: str | None = None, sent_at: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """Apple signs inside the body: ``body``'s notification signed again, dated ``sent_at``; a ``secret``
        other than :attr:`webhook_secret` stands for a forger, who signs with a chain of their own."""
        payload = _payload_of(body)
        if sent_at is not None:
            payload["signedDate"] = sent_at * 1000
        if secret is not None and secret != self.webhook_secret:
            key, chain = self._forger()
            signed = self.sign(payload, key=key, chain=chain)
        else:
            signed = self.sign(payload)
        return json.dumps({"signedPayload": signed}).encode(), {"content-type": "application/json"}

    def unsigned_webhook(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        """The notification as a JWS with its signature removed."""
        head, payload, _ = json.loads(body)["signedPayload"].split(".")
        return json.dumps({"signedPayload": f"{head}.{payload}."}).encode(), {"content-type": "application/json"}

    def tampered_webhook(self, body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        """The signed notification with its payload changed (another type) and Apple's signature kept."""
        head, _, signature = json.loads(body)["signedPayload"].split(".")
        changed = {**_payload_of(body), "notificationType": "REFUND"}
        forged = f"{head}.{_b64url(json.dumps(changed).encode())}.{signature}"
        return json.dumps({"signedPayload": forged}).encode(), headers

    def _forger(self) -> tuple[ec.EllipticCurvePrivateKey, list[str]]:
        """A signing key and a well-formed chain (with Apple's OIDs) under a root nobody trusts."""
        root_key, intermediate_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
        root = _certificate("Emulated Root CA", root_key, None, ca=True, oid=None)
        intermediate = _certificate(
            "Emulated WWDR CA", intermediate_key, ("Emulated Root CA", root_key), ca=True, oid=_INTERMEDIATE_OID
        )
        leaf = _certificate(
            "Emulated StoreKit Signing", leaf_key, ("Emulated WWDR CA", intermediate_key), ca=False, oid=_LEAF_OID
        )
        chain = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in (leaf, intermediate, root)
        ]
        return leaf_key, chain

    def seed_records(self, count: int) -> None:
        """``count`` notifications sent over the last hour, one millisecond apart."""
        start = int(time.time() * 1000) - 3_600_000
        with self.lock:
            base = len(self._history)
        for i in range(count):
            kind, subtype = _TYPES[(base + i) % len(_TYPES)]
            at = start + base + i
            self.add_notification(self.notification(kind, subtype, signed_ms=at), sent_ms=at)

    # -- the vendor's contract --------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        parts = token.split(".")
        if scheme != "Bearer" or len(parts) != 3:
            return _unauthenticated()
        try:
            header, claims = json.loads(_unb64url(parts[0])), json.loads(_unb64url(parts[1]))
            raw = _unb64url(parts[2])
            signature = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            self.api_key_private.public_key().verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256())
            )
        except (ValueError, InvalidSignature, UnicodeDecodeError):
            return _unauthenticated()
        now = time.time()
        exp = claims.get("exp") if isinstance(claims, dict) else None
        valid = (
            isinstance(header, dict)
            and header.get("alg") == "ES256"
            and header.get("kid") == self.key_id
            and claims.get("iss") == self.issuer_id
            and claims.get("aud") == "appstoreconnect-v1"
            and claims.get("bid") == self.bundle_id
            and isinstance(exp, int | float)
            and now < exp <= now + 3600
        )
        return None if valid else _unauthenticated()

    def rate_limited(self, retry_after: int) -> Response:
        return _error(429, 4290000, "Rate limit exceeded.")

    def route(self, request: Request) -> Response:
        if request.method == "POST" and request.path == "/inApps/v1/notifications/history":
            return self._history_page(request)
        if request.method == "POST" and request.path == "/inApps/v1/notifications/test":
            self.add_notification(self.notification("TEST", None))
            return Response(200, {"testNotificationToken": f"{uuid.uuid4()}_{int(time.time() * 1000)}"})
        return Response(404, b"Not Found\n", content_type="text/plain")

    def _history_page(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, 4000000, "Invalid request.")
        start, end = body.get("startDate"), body.get("endDate")
        if not isinstance(start, int) or isinstance(start, bool):
            return _error(400, 4000015, "Invalid start date.")
        if not isinstance(end, int) or isinstance(end, bool):
            return _error(400, 4000016, "Invalid end date.")
        if start < int(time.time() * 1000) - RETENTION_MS:
            return _error(400, 4000012, "Start date too far in the past.")
        if start >= end:
            return _error(400, 4000013, "Start date after end date.")
        kind = body.get("notificationType")
        query = f"{start}:{end}:{kind}"
        offset = 0
        token = request.arg("paginationToken")
        if token:
            try:
                asked, _, number = base64.urlsafe_b64decode(token.encode()).decode().rpartition(":")
                offset = int(number)
            except (ValueError, UnicodeDecodeError):
                asked = ""
            if asked != query:
                return _error(400, 4000014, "Invalid pagination token.")
        with self.lock:
            matching = [
                (at, signed)
                for at, signed in self._history
                if start <= at < end and (kind is None or f'"notificationType": "{kind}"' in _payload_text(signed))
            ]
        page = matching[offset : offset + PAGE_SIZE]
        more = offset + PAGE_SIZE < len(matching)
        answer: dict[str, Any] = {
            "notificationHistory": [
                {"signedPayload": signed, "sendAttempts": [{"attemptDate": at, "sendAttemptResult": "SUCCESS"}]}
                for at, signed in page
            ],
            "hasMore": more,
        }
        if more:
            answer["paginationToken"] = base64.urlsafe_b64encode(f"{query}:{offset + PAGE_SIZE}".encode()).decode()
        return Response(200, answer)


def _payload_text(signed: str) -> str:
    return _unb64url(signed.split(".")[1]).decode()
