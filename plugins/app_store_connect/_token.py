"""The ES256 token the App Store Server API takes, signed per request with the team's In-App Purchase key.

Header ``{alg: ES256, kid: <keyId>, typ: JWT}``; claims ``iss`` (issuer id), ``iat``, ``exp`` (now + 5 minutes,
as Apple's own library sets it, well under the 60 minutes Apple allows), ``aud: appstoreconnect-v1`` and
``bid`` (the bundle id). A JWS signature is the raw ``r || s`` pair (RFC 7518 3.4), not DER.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from interlink.connector import PermanentError

__all__ = ["AUDIENCE", "TOKEN_LIFETIME", "b64url", "b64url_decode", "bearer_token"]

AUDIENCE = "appstoreconnect-v1"
TOKEN_LIFETIME = 300
"""Seconds a token lives: a new one is signed for every request."""


def b64url(data: bytes) -> str:
    """Base64url without padding, as JOSE encodes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of a base64url segment (padding optional); ``ValueError`` when it is not base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=32)
def _signing_key(pem: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.strip().encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise PermanentError(
            "settings.privateKey is not a readable PEM private key — paste the whole AuthKey_<keyId>.p8 file, "
            "from -----BEGIN PRIVATE KEY----- to -----END PRIVATE KEY-----",
            setting="privateKey",
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise PermanentError(
            "settings.privateKey is not an App Store Connect key (an ES256, P-256 key) — use the .p8 file of an "
            "In-App Purchase key",
            setting="privateKey",
        )
    return key


def _required(settings: Mapping[str, Any], name: str, what: str) -> str:
    value = str(settings.get(name) or "").strip()
    if not value:
        raise PermanentError(f"No {what} — set settings.{name}", setting=name)
    return value


def bearer_token(settings: Mapping[str, Any], now: datetime) -> str:
    """A fresh ``Bearer`` value for one request at ``now``."""
    key = _signing_key(_required(settings, "privateKey", "private key"))
    header = {"alg": "ES256", "kid": _required(settings, "keyId", "key id"), "typ": "JWT"}
    issued = int(now.timestamp())
    claims = {
        "iss": _required(settings, "issuerId", "issuer id"),
        "iat": issued,
        "exp": issued + TOKEN_LIFETIME,
        "aud": AUDIENCE,
        "bid": _required(settings, "bundleId", "bundle id"),
    }
    signing_input = f"{b64url(_json(header))}.{b64url(_json(claims))}"
    r, s = decode_dss_signature(key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
