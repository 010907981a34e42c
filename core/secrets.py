"""Secrets: encryption of ``writeOnly`` settings at rest, masking in responses, redaction in logs.

The key ring comes from ``INTERLINK_SECRET_KEY`` (comma-separated Fernet keys, newest first, so old
keys keep decrypting during a rotation) or from a key generated once into the data directory (0600).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["MASK", "KeyRing", "SecretKeyError", "mask_settings", "merge_settings", "redact"]

MASK = "********"
"""What every response shows in place of a secret value: fixed, so it reveals no character."""

_PREFIX = "enc:v1:"


class SecretKeyError(RuntimeError):
    """The key ring cannot be built, or a stored secret cannot be decrypted with it."""


class KeyRing:
    """Encrypts and decrypts secret values; the first key encrypts, every key decrypts."""

    def __init__(self, keys: Iterable[str]) -> None:
        try:
            fernets = [Fernet(k.encode()) for k in keys]
        except ValueError:
            raise SecretKeyError(
                "INTERLINK_SECRET_KEY must hold Fernet keys (32 url-safe base64 bytes), comma-separated"
            ) from None
        if not fernets:
            raise SecretKeyError("no secret key given")
        self._fernet = MultiFernet(fernets)

    @classmethod
    def load(cls, keys: tuple[str, ...], data_dir: Path) -> KeyRing:
        """Use ``keys`` if given, else the data directory's key file, creating it (mode 0600) once."""
        if keys:
            return cls(keys)
        path = data_dir / "secret.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(Fernet.generate_key().decode())
        return cls([path.read_text().strip()])

    def encrypt(self, value: Any) -> str:
        return _PREFIX + self._fernet.encrypt(json.dumps(value).encode()).decode()

    def decrypt(self, token: str) -> Any:
        if not (isinstance(token, str) and token.startswith(_PREFIX)):
            return token
        try:
            return json.loads(self._fernet.decrypt(token[len(_PREFIX) :].encode()))
        except InvalidToken:
            raise SecretKeyError("a stored secret cannot be decrypted: was INTERLINK_SECRET_KEY changed?") from None

    def seal(self, settings: Mapping[str, Any], secret_keys: Iterable[str]) -> dict[str, Any]:
        """``settings`` with each secret value encrypted, ready to store."""
        secret = set(secret_keys)
        return {k: self.encrypt(v) if k in secret else v for k, v in settings.items()}

    def open(self, stored: Mapping[str, Any], secret_keys: Iterable[str]) -> dict[str, Any]:
        """Stored settings with each secret value decrypted, for a connector call."""
        secret = set(secret_keys)
        return {k: self.decrypt(v) if k in secret else v for k, v in stored.items()}


def mask_settings(settings: Mapping[str, Any], secret_keys: Iterable[str]) -> dict[str, Any]:
    """Settings as a response shows them: every secret value replaced by :data:`MASK`."""
    secret = set(secret_keys)
    return {k: MASK if k in secret else v for k, v in settings.items()}


def merge_settings(current: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a PUT's settings: omitted keys and masked values keep what is stored; ``null`` removes a key.

    A masked value for a key that is not stored is dropped, so validation reports it as missing.
    """
    merged = dict(current)
    for key, value in update.items():
        if value == MASK:  # the mask a response showed: keep what is stored, never store the mask
            continue
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def redact(text: str, secret_values: Iterable[Any]) -> str:
    """``text`` with every occurrence of a secret value replaced by :data:`MASK`."""
    for value in secret_values:
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, MASK)
    return text
