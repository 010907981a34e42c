"""Real-time developer notifications: a Pub/Sub push authenticated by a Google-signed OIDC token.

Pub/Sub signs each push with ``Authorization: Bearer <JWT>`` (RS256, ``kid``) for the push subscription's
service account. :func:`verify_push` accepts it when:

* the signature verifies with Google's key of that ``kid`` (see "Keys" below);
* ``iss`` is ``https://accounts.google.com`` (or ``accounts.google.com``);
* ``aud`` is ``settings.pushAudience``; unset, an audience URL whose path is this integration's hook path
  (Pub/Sub's default audience is the push endpoint's URL);
* ``email`` is ``settings.pushServiceAccountEmail`` and ``email_verified`` is true. Pushes are refused
  while that setting is unset: any Google account can create a push subscription aimed at a public URL
  with the same audience, so the signer's identity is what proves the push is the app's;
* ``exp`` is after ``request.received_at`` (Google's tokens live an hour; no grace past it) and ``iat`` at
  most 5 minutes after it;
* the notification's ``packageName`` is ``settings.packageName``.

The token does not cover the body (Pub/Sub signs who sends, not what): TLS protects the body, and
``messageId`` (the envelope id) makes a replayed message a repeat the core records once.

Keys: ``settings.pushCertificates`` (a key set pasted as JSON: Google's ``{kid: PEM certificate}`` document,
or a JWKS ``{"keys": [...]}``) makes verification fully offline. Unset, the keys are read from
``settings.pushCertificatesUrl`` (Google's https://www.googleapis.com/oauth2/v1/certs by default) and kept in
this process for the ``max-age`` Google gives (hours); they are read again before that only for a ``kid``
not yet seen, at most once a minute. That read is the one network call verification may make: Google rotates
its keys every few weeks, so a pasted key set goes stale, and a push cannot be verified without the key.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from interlink.connector import ConnectorContext, PermanentError, TransientError, WebhookRequest
from interlink.http import raise_for_status, transient_from_transport_error

__all__ = ["GOOGLE_CERTS_URL", "decode_push", "key_set", "verify_push"]

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
MAX_SKEW = 300
_REFETCH_AFTER = 60.0
_MAX_AGE = re.compile(r"max-age=(\d+)")
Keys = dict[str, rsa.RSAPublicKey]


@dataclass
class _Cached:
    keys: Keys
    fetched: float
    expires: float


_cache: dict[str, _Cached] = {}
_cache_lock = threading.Lock()


def _b64url_json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _parse_keys(document: object) -> Keys:
    keys: Keys = {}
    if not isinstance(document, dict):
        return keys
    if isinstance(document.get("keys"), list):  # JWKS (oauth2/v3/certs)
        for jwk in document["keys"]:
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not isinstance(jwk.get("kid"), str):
                continue
            try:
                n = int.from_bytes(base64.urlsafe_b64decode(jwk["n"] + "=" * (-len(jwk["n"]) % 4)), "big")
                e = int.from_bytes(base64.urlsafe_b64decode(jwk["e"] + "=" * (-len(jwk["e"]) % 4)), "big")
                keys[jwk["kid"]] = rsa.RSAPublicNumbers(e, n).public_key()
            except (KeyError, TypeError, ValueError, binascii.Error):
                continue
        return keys
    for kid, pem in document.items():  # {kid: PEM certificate} (oauth2/v1/certs)
        if not isinstance(pem, str):
            continue
        try:
            key = x509.load_pem_x509_certificate(pem.encode("utf-8")).public_key()
        except ValueError:
            continue
        if isinstance(key, rsa.RSAPublicKey):
            keys[str(kid)] = key
    return keys


@lru_cache(maxsize=16)
def key_set(text: str) -> Keys:
    """The keys of a pasted key set; PermanentError naming ``pushCertificates`` when it holds none."""
    try:
        keys = _parse_keys(json.loads(text))
    except ValueError:
        keys = {}
    if not keys:
        raise PermanentError(
            "settings.pushCertificates holds no RSA key — paste the JSON of "
            f"{GOOGLE_CERTS_URL} (or a JWKS), or clear it to read Google's keys as they rotate",
            setting="pushCertificates",
        )
    return keys


def _fetch(ctx: ConnectorContext, url: str) -> _Cached:
    try:
        response = ctx.http.get(url, headers={"Accept": "application/json"}, timeout=httpx.Timeout(5.0))
    except httpx.TransportError as exc:
        raise transient_from_transport_error(exc) from None
    raise_for_status(response, setting="pushCertificatesUrl")
    try:
        keys = _parse_keys(response.json())
    except ValueError:
        keys = {}
    if not keys:
        raise PermanentError(
            "settings.pushCertificatesUrl serves no RSA key — point it at Google's certificates",
            setting="pushCertificatesUrl",
        )
    found = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
    max_age = min(max(float(found.group(1)) if found else 3600.0, _REFETCH_AFTER), 86_400.0)
    now = time.monotonic()
    return _Cached(keys, now, now + max_age)


def _key(ctx: ConnectorContext, kid: str) -> rsa.RSAPublicKey | None:
    pasted = str(ctx.settings.get("pushCertificates") or "").strip()
    if pasted:
        return key_set(pasted).get(kid)
    url = str(ctx.settings.get("pushCertificatesUrl") or GOOGLE_CERTS_URL).strip()
    with _cache_lock:
        cached = _cache.get(url)
    now = time.monotonic()
    if cached is not None and now < cached.expires and (kid in cached.keys or now - cached.fetched < _REFETCH_AFTER):
        return cached.keys.get(kid)
    try:
        fresh = _fetch(ctx, url)
    except TransientError:
        if cached is not None and kid in cached.keys:  # Google unreachable: the keys we have still verify
            return cached.keys[kid]
        raise
    with _cache_lock:
        _cache[url] = fresh
    return fresh.keys.get(kid)


def _refuse(message: str, setting: str) -> PermanentError:
    return PermanentError(message, setting=setting)


def _token(request: WebhookRequest) -> str:
    sent = request.header("Authorization") or ""
    scheme, _, token = sent.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _refuse(
            "the push carries no Google OIDC token — turn on authentication on the Pub/Sub push subscription, "
            "with the service account set in settings.pushServiceAccountEmail",
            "pushServiceAccountEmail",
        )
    return token.strip()


def _claims(ctx: ConnectorContext, token: str) -> dict[str, Any]:
    parts = token.split(".")
    try:
        header, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
        signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except (IndexError, ValueError, binascii.Error):
        raise _refuse("the push's token is not a JWT", "pushCertificates") from None
    if len(parts) != 3 or not isinstance(header, dict) or not isinstance(claims, dict):
        raise _refuse("the push's token is not a JWT", "pushCertificates")
    kid = header.get("kid")
    if header.get("alg") != "RS256" or not isinstance(kid, str):
        raise _refuse("the push's token is not an RS256 token with a key id", "pushCertificates")
    key = _key(ctx, kid)
    if key is None:
        raise _refuse("the push's token is signed with a key that is not one of Google's", "pushCertificates")
    try:
        key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise _refuse("the push's token signature does not verify with Google's key", "pushCertificates") from None
    return claims


def _check_claims(settings: Mapping[str, Any], claims: Mapping[str, Any], request: WebhookRequest) -> None:
    if claims.get("iss") not in ISSUERS:
        raise _refuse("the push's token was not issued by Google (iss)", "pushCertificates")
    audience, aud = str(settings.get("pushAudience") or "").strip(), claims.get("aud")
    if audience:
        if aud != audience:
            raise _refuse(
                "the push's token is for another audience — set settings.pushAudience to the audience of the push "
                "subscription",
                "pushAudience",
            )
    elif not isinstance(aud, str) or urlsplit(aud).path.rstrip("/") != request.path.rstrip("/"):
        raise _refuse(
            "the push's token audience is not this integration's hook URL — set settings.pushAudience to the "
            "audience configured on the push subscription",
            "pushAudience",
        )
    expected = str(settings.get("pushServiceAccountEmail") or "").strip().lower()
    email = claims.get("email")
    if not isinstance(email, str) or email.lower() != expected or claims.get("email_verified") is not True:
        raise _refuse(
            "the push was signed by another account than settings.pushServiceAccountEmail — set it to the push "
            "subscription's service account",
            "pushServiceAccountEmail",
        )
    exp, iat = claims.get("exp"), claims.get("iat")
    received = request.received_at.timestamp()
    if isinstance(exp, bool) or not isinstance(exp, int | float) or received >= exp:
        raise _refuse("the push's token had expired when the push arrived (a replay?)", "pushServiceAccountEmail")
    if isinstance(iat, int | float) and not isinstance(iat, bool) and iat > received + MAX_SKEW:
        raise _refuse("the push's token is issued in the future; check this server's clock", "pushServiceAccountEmail")


def decode_push(request: WebhookRequest) -> tuple[str, dict[str, Any], str | None]:
    """``(messageId, DeveloperNotification, publishTime)`` of a push body; PermanentError when malformed."""
    try:
        body = json.loads(request.body)
    except ValueError:
        raise PermanentError("the Pub/Sub push body is not JSON") from None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        raise PermanentError('the Pub/Sub push body has no "message"')
    message_id = message.get("messageId") or message.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        raise PermanentError("the Pub/Sub message has no messageId")
    try:
        notification = json.loads(base64.b64decode(str(message.get("data") or ""), validate=True))
    except (ValueError, binascii.Error):
        raise PermanentError("the Pub/Sub message data is not base64 JSON") from None
    if not isinstance(notification, dict):
        raise PermanentError("the Pub/Sub message data is not a developer notification")
    published = message.get("publishTime") or message.get("publish_time")
    return message_id, notification, published if isinstance(published, str) else None


def verify_push(ctx: ConnectorContext, request: WebhookRequest) -> None:
    """Accept a genuine push for this app; PermanentError naming the setting otherwise (see the docstring)."""
    if not str(ctx.settings.get("pushServiceAccountEmail") or "").strip():
        raise _refuse(
            "Google Play notifications are refused until settings.pushServiceAccountEmail is set to the service "
            "account of the authenticated Pub/Sub push subscription",
            "pushServiceAccountEmail",
        )
    token = _token(request)
    _check_claims(ctx.settings, _claims(ctx, token), request)
    _, notification, _ = decode_push(request)
    package = str(ctx.settings.get("packageName") or "")
    if notification.get("packageName") != package:
        raise _refuse(f"the notification is for another app than settings.packageName ({package!r})", "packageName")
