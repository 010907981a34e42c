"""App Store signed data (JWS): decoding, and verification as Apple's own library does it.

A signed payload is verified in this order (``signed_data_verifier.py`` of app-store-server-library):

1. the header says ``alg: ES256`` and carries ``x5c``: exactly three base64 DER certificates, leaf first;
2. the leaf is issued by the intermediate, and the intermediate by one of the trusted roots
   (``settings.rootCertificates``, else Apple Root CA - G3), each valid at the payload's ``signedDate``;
   the intermediate is a CA; the third certificate sent is not trusted for itself;
3. the leaf carries Apple's OID 1.2.840.113635.100.6.11.1 and the intermediate 1.2.840.113635.100.6.2.1
   (without them any certificate Apple issued to any developer would do);
4. the signature over ``header.payload`` verifies with the leaf's key.

No OCSP query is made: verification makes no network call. Checks of the payload's content (bundle,
environment, age) are the caller's.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from interlink.connector import PermanentError

from ._roots import APPLE_ROOT_CA_G3
from ._token import b64url_decode

__all__ = [
    "INTERMEDIATE_OID",
    "LEAF_OID",
    "ROOTS_SETTING",
    "InvalidSignedData",
    "decode_unverified",
    "trusted_roots",
    "verify_signed",
]

LEAF_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.11.1")
INTERMEDIATE_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.2.1")
ROOTS_SETTING = "rootCertificates"


class InvalidSignedData(PermanentError):
    """The JWS is malformed, untrusted or its signature does not verify."""

    def __init__(self, message: str) -> None:
        super().__init__(message, setting=ROOTS_SETTING)


def _segments(jws: str) -> list[str]:
    parts = jws.split(".") if isinstance(jws, str) else []
    if len(parts) != 3 or not all(parts[:2]):
        raise InvalidSignedData("the signed payload is not a compact JWS (header.payload.signature)")
    return parts


def _json_segment(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(segment))
    except (ValueError, binascii.Error):
        raise InvalidSignedData(f"the JWS {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise InvalidSignedData(f"the JWS {what} is not a JSON object")
    return value


def decode_unverified(jws: str) -> dict[str, Any]:
    """The payload of a JWS, without verifying it: for data whose origin is already established."""
    return _json_segment(_segments(jws)[1], "payload")


@lru_cache(maxsize=16)
def trusted_roots(pem: str | None) -> tuple[x509.Certificate, ...]:
    """The certificates of a PEM bundle (``None``: Apple Root CA - G3); PermanentError when it holds none."""
    try:
        roots = tuple(x509.load_pem_x509_certificates((pem or APPLE_ROOT_CA_G3).encode("utf-8")))
    except ValueError:
        roots = ()
    if not roots:
        raise PermanentError(
            "settings.rootCertificates holds no readable PEM certificate — paste Apple's root certificate(s) in "
            "PEM, or clear the setting to trust Apple Root CA - G3",
            setting=ROOTS_SETTING,
        )
    return roots


def _certificates(header: dict[str, Any]) -> list[x509.Certificate]:
    chain = header.get("x5c")
    if not isinstance(chain, list) or len(chain) != 3 or not all(isinstance(c, str) for c in chain):
        raise InvalidSignedData("the JWS header does not carry the three certificates of Apple's chain (x5c)")
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in chain]
    except (ValueError, binascii.Error):
        raise InvalidSignedData("a certificate of the JWS x5c chain cannot be read") from None


def _has_extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bool:
    try:
        cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _issued(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_chain(
    leaf: x509.Certificate, intermediate: x509.Certificate, roots: tuple[x509.Certificate, ...], at: datetime
) -> None:
    anchor = next((root for root in roots if _issued(intermediate, root)), None)
    if anchor is None or not _issued(leaf, intermediate) or not _is_ca(intermediate):
        raise InvalidSignedData(
            "the JWS certificate chain does not lead to a trusted root — only Apple signs these notifications; "
            "settings.rootCertificates, when set, must hold Apple's root"
        )
    for cert in (leaf, intermediate, anchor):
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise InvalidSignedData("a certificate of the JWS chain was not valid when the payload was signed")
    if not _has_extension(leaf, LEAF_OID) or not _has_extension(intermediate, INTERMEDIATE_OID):
        raise InvalidSignedData("the JWS certificates are not App Store signing certificates (Apple's OIDs missing)")


def verify_signed(jws: str, roots: tuple[x509.Certificate, ...]) -> dict[str, Any]:
    """The payload of ``jws`` once its chain and signature are verified; :class:`InvalidSignedData` otherwise."""
    head, body, signature = _segments(jws)
    header = _json_segment(head, "header")
    if header.get("alg") != "ES256":
        raise InvalidSignedData("the JWS is not signed with ES256")
    leaf, intermediate, _sent_root = _certificates(header)
    payload = _json_segment(body, "payload")
    signed = payload.get("signedDate")
    if isinstance(signed, bool) or not isinstance(signed, int | float):
        raise InvalidSignedData("the signed payload has no signedDate")
    try:
        at = datetime.fromtimestamp(signed / 1000.0, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidSignedData("the signed payload's signedDate is out of range") from None
    _check_chain(leaf, intermediate, roots, at)
    key = leaf.public_key()
    try:
        raw = b64url_decode(signature)
    except (ValueError, binascii.Error):
        raw = b""
    if not isinstance(key, ec.EllipticCurvePublicKey) or len(raw) != 64:
        raise InvalidSignedData("the JWS signature does not verify with the leaf certificate")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        key.verify(der, f"{head}.{body}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise InvalidSignedData("the JWS signature does not verify with the leaf certificate") from None
    return payload
