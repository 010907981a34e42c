"""The service-account OAuth 2.0 grant: an RS256 JWT assertion exchanged at ``token_uri`` for an access token.

``settings.serviceAccountJson`` is the key file Google Cloud issues (``client_email``, ``private_key``,
``token_uri``). The assertion carries ``iss`` (the account), ``scope`` (androidpublisher), ``aud`` (the token
URI), ``iat`` and ``exp = iat + 3600``; it is POSTed form-encoded with ``grant_type=
urn:ietf:params:oauth:grant-type:jwt-bearer``. The token is kept for the one connector call that asked for it.
A refused grant (400 ``invalid_grant``, 401) is a :class:`PermanentError` naming ``serviceAccountJson``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from interlink.connector import ConnectorContext, PermanentError
from interlink.http import raise_for_status

__all__ = ["GRANT_TYPE", "SCOPE", "SETTING", "ServiceAccount", "access_token", "assertion", "b64url", "service_account"]

SETTING = "serviceAccountJson"
SCOPE = "https://www.googleapis.com/auth/androidpublisher"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret


def b64url(data: bytes) -> str:
    """Base64url without padding, as JOSE encodes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class ServiceAccount:
    client_email: str
    private_key: rsa.RSAPrivateKey
    private_key_id: str | None
    token_uri: str


def _refuse(problem: str) -> PermanentError:
    return PermanentError(
        f"settings.serviceAccountJson {problem} — paste the whole JSON key file of the service account "
        "(Google Cloud console, IAM, Service accounts, Keys)",
        setting=SETTING,
    )


@lru_cache(maxsize=32)
def _parse(text: str) -> ServiceAccount:
    try:
        data = json.loads(text)
    except ValueError:
        raise _refuse("is not JSON") from None
    if not isinstance(data, dict):
        raise _refuse("is not a JSON object")
    email, pem = data.get("client_email"), data.get("private_key")
    if not isinstance(email, str) or not email or not isinstance(pem, str) or not pem:
        raise _refuse("lacks client_email or private_key")
    try:
        key = serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise _refuse("holds a private_key that cannot be read") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _refuse("holds a private_key that is not an RSA key")
    token_uri = data.get("token_uri")
    key_id = data.get("private_key_id")
    return ServiceAccount(
        client_email=email,
        private_key=key,
        private_key_id=key_id if isinstance(key_id, str) and key_id else None,
        token_uri=token_uri if isinstance(token_uri, str) and token_uri.startswith("http") else DEFAULT_TOKEN_URI,
    )


def service_account(settings: Mapping[str, Any]) -> ServiceAccount:
    """The parsed key file; PermanentError naming ``serviceAccountJson`` when it is missing or unreadable."""
    text = str(settings.get(SETTING) or "").strip()
    if not text:
        raise PermanentError("No service account — set settings.serviceAccountJson", setting=SETTING)
    return _parse(text)


def assertion(account: ServiceAccount, issued: int) -> str:
    """The signed JWT of the grant, issued at unix time ``issued``."""
    header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
    if account.private_key_id:
        header["kid"] = account.private_key_id
    claims = {
        "iss": account.client_email,
        "scope": SCOPE,
        "aud": account.token_uri,
        "iat": issued,
        "exp": issued + 3600,
    }
    signing_input = f"{b64url(_json(header))}.{b64url(_json(claims))}"
    signature = account.private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def access_token(ctx: ConnectorContext) -> str:
    """A fresh access token from the service account's token URI."""
    account = service_account(ctx.settings)
    response = ctx.http.post(
        account.token_uri,
        data={"grant_type": GRANT_TYPE, "assertion": assertion(account, int(ctx.now().timestamp()))},
        headers={"Accept": "application/json"},
    )
    if response.status_code in (400, 401, 403):
        try:
            body = response.json()
        except ValueError:
            body = {}
        found = [body.get(k) for k in ("error_description", "error")] if isinstance(body, dict) else []
        reason = next((r for r in found if isinstance(r, str) and r), None)
        detail = f"HTTP {response.status_code}" + (f": {str(reason)[:200]}" if reason else "")
        raise PermanentError(
            f"Google refused the service account's token request ({detail}) — the key may be deleted or disabled: "
            "update settings.serviceAccountJson with a current key file",
            setting=SETTING,
        )
    raise_for_status(response, setting=SETTING)
    try:
        token = response.json().get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise PermanentError(
            "the token endpoint answered without an access_token — check token_uri in settings.serviceAccountJson",
            setting=SETTING,
        )
    return token


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
