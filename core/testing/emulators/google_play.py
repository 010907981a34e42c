"""A Google Play emulator (``vendors.md`` section 7): the OAuth token endpoint, the Android Publisher API's
voided purchases, Google's push-token keys, and Pub/Sub's authenticated RTDN pushes.

What it follows:

* ``POST /token`` (no credentials): the service-account JWT bearer grant. The RS256 assertion must be signed
  by the key of :meth:`service_account_json`, with ``iss`` its ``client_email``, ``aud`` this URL, ``scope``
  androidpublisher and a live ``exp`` at most an hour after ``iat``; else 400 ``invalid_grant``. Success:
  ``{access_token, expires_in: 3599, token_type: Bearer}``;
* API auth: ``Authorization: Bearer <access token>`` it issued; else 401 ``UNAUTHENTICATED``. Errors are
  ``{"error": {code, message, status}}``; 429 is ``RESOURCE_EXHAUSTED`` with no ``Retry-After``;
* ``GET /androidpublisher/v3/applications/{packageName}/purchases/voidedpurchases``: ``startTime``/``endTime``
  (ms; 400 when ``startTime`` is more than 30 days back), ``maxResults`` (default and cap
  :attr:`GooglePlayEmulator.max_results`, 1000 as Google), ``token`` (the times are ignored with it), ``type``
  (0: in-app only, the default; 1: with subscriptions); oldest first by ``voidedTimeMillis``; an unknown
  package is 404;
* ``GET /oauth2/v1/certs`` (no credentials): ``{kid: PEM certificate}`` of the key signing push tokens, with
  ``Cache-Control: max-age``; ``/oauth2/v3/certs`` the same as a JWKS;
* pushes: :meth:`push_body` is a Pub/Sub push of a DeveloperNotification, :meth:`push_token` the OIDC token
  (``iss`` accounts.google.com, ``aud`` :attr:`push_audience`, ``email`` :attr:`push_email`, ``exp`` an hour
  after ``iat``). A token "signed with another secret" is signed by another RSA key under the same ``kid``.
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
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from interlink.testing.emulators.base import Emulator, Request, Response

__all__ = ["GooglePlayEmulator"]

PREFIX = "/androidpublisher/v3/applications/"
SCOPE = "https://www.googleapis.com/auth/androidpublisher"
RETENTION_MS = 30 * 86_400_000


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _error(status: int, state: str, message: str) -> Response:
    return Response(status, {"error": {"code": status, "message": message, "status": state}})


def _order_id(n: int) -> str:
    digits = f"{n % 10**17:017d}"
    return f"GPA.{digits[:4]}-{digits[4:8]}-{digits[8:12]}-{digits[12:]}"


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _sign_rs256(key: rsa.RSAPrivateKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


class GooglePlayEmulator(Emulator):
    """Google Play for one app on 127.0.0.1; see the module docstring."""

    service: ClassVar[str] = "google_play"
    default_webhook_secret: ClassVar[str] = "google-push-signing-key-0001"  # noqa: S105
    """Names the key that signs push tokens (its ``kid``); any other value signs with an impostor key."""
    webhook_signed: ClassVar[bool] = False  # the OIDC token proves the sender, it does not cover the body
    webhook_timestamped: ClassVar[bool] = True  # iat/exp

    def __init__(
        self,
        *,
        api_key: str | None = None,
        webhook_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        package_name: str = "com.example.emulated",
    ) -> None:
        super().__init__(api_key=api_key, webhook_secret=webhook_secret, host=host, port=port)
        self.package_name = package_name
        self.client_email = "interlink-reader@emulated-project.iam.gserviceaccount.com"
        self.push_email = "rtdn-push@emulated-project.iam.gserviceaccount.com"
        self.max_results = 1000
        self.service_key = _rsa_key()
        self.push_key = _rsa_key()
        self._impostor: rsa.RSAPrivateKey | None = None
        self.tokens: dict[str, float] = {}
        """Access tokens issued, with when they expire (``time.time()``)."""
        self.voided: list[dict[str, Any]] = []
        self._subscription: list[bool] = []

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def push_audience(self) -> str:
        """The audience of the push subscription (Pub/Sub's default is the push URL; any string is allowed)."""
        return "https://interlink.example/v1/hooks/int_conformance"

    def service_account_json(self, *, key: rsa.RSAPrivateKey | None = None) -> str:
        """A service-account key file whose ``token_uri`` is this emulator (another ``key`` for a revoked one)."""
        pem = (key or self.service_key).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return json.dumps(
            {
                "type": "service_account",
                "project_id": "emulated-project",
                "private_key_id": "0123456789abcdef0123456789abcdef01234567",
                "private_key": pem.decode(),
                "client_email": self.client_email,
                "client_id": "100000000000000000001",
                "token_uri": self.token_uri,
            }
        )

    # -- records and pushes -----------------------------------------------------------------------

    def add_voided(self, *, voided_ms: int | None = None, subscription: bool = False, **fields: Any) -> dict[str, Any]:
        """A voided purchase (kept in ``voidedTimeMillis`` order); ``fields`` override the documented ones."""
        at = voided_ms if voided_ms is not None else int(time.time() * 1000)
        n = uuid.uuid4().int
        item = {
            "kind": "androidpublisher#voidedPurchase",
            "purchaseToken": f"emu{n:x}.AO-J1Oz{n % 10**12:012d}",
            "orderId": _order_id(n),
            "purchaseTimeMillis": str(at - 86_400_000),
            "voidedTimeMillis": str(at),
            "voidedSource": 0,
            "voidedReason": 1,
            **fields,
        }
        with self.lock:
            index = len(self.voided)
            while index and int(self.voided[index - 1]["voidedTimeMillis"]) > at:
                index -= 1
            self.voided.insert(index, item)
            self._subscription.insert(index, subscription)
        return item

    def developer_notification(self, kind: str = "subscription", code: int = 4, **fields: Any) -> dict[str, Any]:
        """A DeveloperNotification: ``kind`` subscription, oneTimeProduct, voidedPurchase or test."""
        body: dict[str, Any] = {
            "version": "1.0",
            "packageName": self.package_name,
            "eventTimeMillis": str(int(time.time() * 1000)),
        }
        token = f"emu{uuid.uuid4().hex}.AO-J1Oz"
        if kind == "subscription":
            body["subscriptionNotification"] = {"version": "1.0", "notificationType": code, "purchaseToken": token}
        elif kind == "oneTimeProduct":
            part = {"version": "1.0", "notificationType": code, "purchaseToken": token, "sku": "coins_100"}
            body["oneTimeProductNotification"] = part
        elif kind == "voidedPurchase":
            body["voidedPurchaseNotification"] = {
                "purchaseToken": token,
                "orderId": "GPA.1234-5678-9012-34567",
                "productType": 1,
                "refundType": 1,
            }
        else:
            body["testNotification"] = {"version": "1.0"}
        body.update(fields)
        return body

    def push_body(self, notification: dict[str, Any] | None = None) -> bytes:
        """The body Pub/Sub pushes for ``notification`` (default: a SUBSCRIPTION_PURCHASED one)."""
        message_id = str(uuid.uuid4().int)[:16]
        data = base64.b64encode(json.dumps(notification or self.developer_notification()).encode()).decode()
        published = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        message = {
            "attributes": {},
            "data": data,
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": published,
            "publish_time": published,
        }
        return json.dumps(
            {"message": message, "subscription": "projects/emulated-project/subscriptions/play-rtdn"}
        ).encode()

    def push_token(self, *, issued: int | None = None, secret: str | None = None, **claims: Any) -> str:
        """The OIDC token Pub/Sub sends, issued at unix time ``issued``; ``claims`` override."""
        iat = issued if issued is not None else int(time.time())
        key = self.push_key
        if secret is not None and secret != self.webhook_secret:
            if self._impostor is None:
                self._impostor = _rsa_key()
            key = self._impostor
        body = {
            "aud": self.push_audience,
            "azp": "100000000000000000002",
            "email": self.push_email,
            "email_verified": True,
            "exp": iat + 3600,
            "iat": iat,
            "iss": "https://accounts.google.com",
            "sub": "100000000000000000002",
            **claims,
        }
        return _sign_rs256(key, {"alg": "RS256", "kid": self.webhook_secret, "typ": "JWT"}, body)

    def send_push(self, url: str, notification: dict[str, Any] | None = None) -> httpx.Response:
        """POST a push to ``url`` as Pub/Sub does."""
        body = self.push_body(notification)
        with httpx.Client(timeout=30.0) as client:
            return client.post(url, content=body, headers=self.webhook_headers(body))

    def certificate_pem(self) -> str:
        """A self-signed certificate of the push-token key, as Google's v1 certs document holds."""
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulated.googleusercontent.com")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.push_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=14))
            .sign(self.push_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def certificates_document(self) -> str:
        """``{kid: PEM}`` of the push-token key: what ``settings.pushCertificates`` may hold."""
        return json.dumps({self.webhook_secret: self.certificate_pem()})

    def control(self, request: Request) -> Response | None:
        """``POST /_emulator/notifications`` with ``{"kind"?, "code"?, "webhook_url"}``: push a notification there."""
        if request.method == "POST" and request.path == "/_emulator/notifications":
            try:
                wanted = request.json()
            except ValueError:
                wanted = None
            if not isinstance(wanted, dict) or not isinstance(wanted.get("webhook_url"), str):
                return Response(400, {"error": 'send {"webhook_url": ..., "kind"?: "subscription", "code"?: 4}'})
            code = wanted["code"] if isinstance(wanted.get("code"), int) else 4
            notification = self.developer_notification(str(wanted.get("kind") or "subscription"), code)
            try:
                status = self.send_push(wanted["webhook_url"], notification).status_code
            except httpx.HTTPError as exc:
                return Response(200, {"notification": notification, "webhook_error": f"{type(exc).__name__}: {exc}"})
            return Response(200, {"notification": notification, "webhook_status": status})
        return super().control(request)

    # -- what the conformance suite asks ----------------------------------------------------------

    def integration_settings(self) -> dict[str, Any]:
        return {
            "baseUrl": self.url,
            "packageName": self.package_name,
            "serviceAccountJson": self.service_account_json(),
            "pushAudience": self.push_audience,
            "pushServiceAccountEmail": self.push_email,
            "pushCertificates": self.certificates_document(),
            "pushCertificatesUrl": f"{self.url}/oauth2/v1/certs",
        }

    def webhook_headers(self, body: bytes, *, secret: str | None = None, sent_at: int | None = None) -> dict[str, str]:
        token = self.push_token(issued=sent_at, secret=secret)
        return {"Content-Type": "application/json", "Authorization": f"Bearer {token}", "User-Agent": "APIs-Google"}

    def sample_webhook(self) -> bytes:
        return self.push_body()

    def seed_records(self, count: int) -> None:
        """``count`` voided purchases over the last hour, in-app and subscriptions."""
        start = int(time.time() * 1000) - 3_600_000
        with self.lock:
            base = len(self.voided)
        for i in range(count):
            self.add_voided(voided_ms=start + base + i, subscription=bool(i % 2))

    # -- the vendor's contract --------------------------------------------------------------------

    def public(self, request: Request) -> bool:
        return request.path in ("/token", "/oauth2/v1/certs", "/oauth2/v3/certs")

    def authenticate(self, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self.lock:
            expires = self.tokens.get(token) if scheme == "Bearer" else None
        if expires is None or expires <= time.time():
            return _error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )
        return None

    def rate_limited(self, retry_after: int) -> Response:
        return _error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Queries'.")

    def route(self, request: Request) -> Response:
        if request.path == "/token" and request.method == "POST":
            return self._grant(request)
        if request.path == "/oauth2/v1/certs":
            return Response(200, json.loads(self.certificates_document()), {"Cache-Control": "public, max-age=21600"})
        if request.path == "/oauth2/v3/certs":
            numbers = self.push_key.public_key().public_numbers()
            jwk = {
                "kty": "RSA",
                "alg": "RS256",
                "use": "sig",
                "kid": self.webhook_secret,
                "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                "e": _b64url(numbers.e.to_bytes(3, "big")),
            }
            return Response(200, {"keys": [jwk]}, {"Cache-Control": "public, max-age=21600"})
        if (
            request.method == "GET"
            and request.path.startswith(PREFIX)
            and request.path.endswith("/purchases/voidedpurchases")
        ):
            package = request.path[len(PREFIX) :].split("/")[0]
            if package != self.package_name:
                return _error(404, "NOT_FOUND", "No application was found for the given package name.")
            return self._voided(request)
        return _error(404, "NOT_FOUND", f"{request.method} {request.path} is not emulated")

    def _grant(self, request: Request) -> Response:
        form = request.form()
        refused = Response(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return Response(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."})
        parts = (form.get("assertion") or [""])[0].split(".")
        try:
            claims = json.loads(_unb64url(parts[1]))
            self.service_key.public_key().verify(
                _unb64url(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except (IndexError, ValueError, InvalidSignature):
            return refused
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (
            claims.get("iss") != self.client_email
            or claims.get("aud") != self.token_uri
            or SCOPE not in str(claims.get("scope", "")).split()
            or not isinstance(iat, int | float)
            or not isinstance(exp, int | float)
            or not now < exp <= iat + 3600
        ):
            return Response(400, {"error": "invalid_grant", "error_description": "Invalid JWT: claims are wrong."})
        token = f"ya29.emu-{uuid.uuid4().hex}"
        with self.lock:
            self.tokens[token] = now + 3599
        return Response(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _voided(self, request: Request) -> Response:
        now = int(time.time() * 1000)
        token = request.arg("token")
        try:
            cap = min(int(request.arg("maxResults") or self.max_results), self.max_results)
            if token:
                start, end, kind, offset = (
                    int(p) for p in base64.urlsafe_b64decode(token.encode()).decode().split(":")
                )
            else:
                start = int(request.arg("startTime") or now - RETENTION_MS)
                end = int(request.arg("endTime") or now)
                kind, offset = int(request.arg("type") or 0), 0
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "Invalid value for a parameter.")
        if cap < 1:
            return _error(400, "INVALID_ARGUMENT", "maxResults must be positive.")
        if not token and start < now - RETENTION_MS:
            return _error(400, "INVALID_ARGUMENT", "startTime is too far in the past.")
        with self.lock:
            matching = [
                item
                for item, subscription in zip(self.voided, self._subscription, strict=True)
                if start <= int(item["voidedTimeMillis"]) <= end and (kind == 1 or not subscription)
            ]
        page = matching[offset : offset + cap]
        body: dict[str, Any] = {"pageInfo": {"totalResults": len(matching), "resultPerPage": cap, "startIndex": offset}}
        if page:
            body["voidedPurchases"] = page
        if offset + cap < len(matching):
            following = base64.urlsafe_b64encode(f"{start}:{end}:{kind}:{offset + cap}".encode()).decode()
            body["tokenPagination"] = {"nextPageToken": following}
        return Response(200, body)
