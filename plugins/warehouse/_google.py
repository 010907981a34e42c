"""Google service-account credentials: the JWT grant (RFC 7523, RS256) for an OAuth access token, cached.

The key file (``serviceAccountJson``) gives ``client_email``, ``private_key`` (PEM), ``private_key_id`` and
``token_uri``. The connector signs ``{iss: client_email, scope, aud: token_uri, iat, exp: iat + 1 h}`` with the
key and posts it to ``token_uri`` (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``); the answer's
``access_token`` is sent as ``Authorization: Bearer`` until a minute before its ``expires_in``. Tokens are kept
per process, keyed on the key file, so deliveries do not pay for a grant each; :func:`forget` drops one the API
refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from interlink.connector import ConnectorContext, PermanentError, TransientError
from interlink.http import parse_retry_after, transient_from_transport_error

__all__ = ["ServiceAccount", "access_token", "forget", "service_account"]

SETTING = "serviceAccountJson"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_LIFETIME = 3600
_MARGIN = 60
_CACHE_SIZE = 256
_cache: dict[str, tuple[str, float]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class ServiceAccount:
    """What the grant needs from a key file; ``fingerprint`` keys the token cache (no secret in it)."""

    client_email: str
    private_key: rsa.RSAPrivateKey
    private_key_id: str
    token_uri: str
    project_id: str | None
    fingerprint: str


def service_account(ctx: ConnectorContext) -> ServiceAccount:
    """Parse ``settings.serviceAccountJson``; a :class:`PermanentError` naming it when it is not a usable key."""
    text = str(ctx.settings.get(SETTING) or "").strip()
    if not text:
        raise PermanentError(
            "no service account key — paste the JSON key file of a service account into settings.serviceAccountJson",
            setting=SETTING,
        )
    try:
        info = json.loads(text)
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise PermanentError(
            "the service account key is not JSON — paste the whole key file into settings.serviceAccountJson",
            setting=SETTING,
        ) from None
    email, pem = info.get("client_email"), info.get("private_key")
    if not isinstance(email, str) or not email or not isinstance(pem, str) or not pem:
        raise PermanentError(
            "the service account key has no client_email or private_key — paste a service account's JSON key file "
            "(not an OAuth client file) into settings.serviceAccountJson",
            setting=SETTING,
        )
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PermanentError(
            "the private_key of the service account key is not an RSA key in PEM — update settings.serviceAccountJson",
            setting=SETTING,
        )
    token_uri = info.get("token_uri") or DEFAULT_TOKEN_URI
    if not isinstance(token_uri, str) or not token_uri.startswith(("https://", "http://")):
        raise PermanentError(
            "the key file's token_uri is not a URL — update settings.serviceAccountJson", setting=SETTING
        )
    project = info.get("project_id")
    return ServiceAccount(
        client_email=email,
        private_key=key,
        private_key_id=str(info.get("private_key_id") or ""),
        token_uri=token_uri,
        project_id=project if isinstance(project, str) and project else None,
        fingerprint=hashlib.sha256(f"{email}\0{token_uri}\0{pem}".encode()).hexdigest(),
    )


def access_token(ctx: ConnectorContext, account: ServiceAccount, scope: str) -> str:
    """A live access token for ``scope``: the cached one, else a new grant through ``ctx.http``."""
    key = f"{account.fingerprint}:{scope}"
    with _lock:
        cached = _cache.get(key)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    token, lifetime = _grant(ctx, account, scope)
    with _lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = (token, time.monotonic() + max(lifetime - _MARGIN, 0))
    return token


def forget(account: ServiceAccount, scope: str) -> None:
    """Drop the cached token (the API refused it: revoked, or the key was rotated)."""
    with _lock:
        _cache.pop(f"{account.fingerprint}:{scope}", None)


def assertion(account: ServiceAccount, scope: str, now: float) -> str:
    """The signed JWT the grant posts (RS256)."""
    header = {"alg": "RS256", "typ": "JWT", **({"kid": account.private_key_id} if account.private_key_id else {})}
    issued = int(now)
    claims = {"iss": account.client_email, "scope": scope, "aud": account.token_uri, "iat": issued}
    claims["exp"] = issued + _LIFETIME
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}".encode()
    signature = account.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{_b64(signature)}"


def _grant(ctx: ConnectorContext, account: ServiceAccount, scope: str) -> tuple[str, float]:
    body = {"grant_type": GRANT_TYPE, "assertion": assertion(account, scope, ctx.now().timestamp())}
    try:
        response = ctx.http.post(account.token_uri, data=body, headers={"Accept": "application/json"})
    except httpx.TransportError as exc:
        raise transient_from_transport_error(exc) from None
    status = response.status_code
    if status == 429 or status >= 500:
        raise TransientError(
            f"the token endpoint is unavailable (HTTP {status})",
            delay=parse_retry_after(response.headers.get("Retry-After")),
        )
    answer = _json(response)
    token = answer.get("access_token")
    if status != 200 or not isinstance(token, str) or not token:
        reason = answer.get("error_description") or answer.get("error") or f"HTTP {status}"
        raise PermanentError(
            f"Google refused the service account key ({str(reason)[:160]}) — update settings.serviceAccountJson "
            "with a current key of an enabled service account",
            setting=SETTING,
        )
    expires = answer.get("expires_in")
    return token, float(expires) if isinstance(expires, int | float) and expires > 0 else float(_LIFETIME)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
