"""Building a connector call: the connector, its context with decrypted settings, and redaction."""

from __future__ import annotations

import logging
import threading
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interlink.connector import Connector, ConnectorContext
from interlink.http import RecordingClient, recording_client
from interlink.registry import RegisteredConnector
from interlink.secrets import redact
from interlink.store.integrations import Integration

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["ConnectorCall", "RedactingLogger", "connector_call"]

_MAX_CLIENTS = 256
_local = threading.local()


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """A connector's logger: every secret value of its integration is masked before the line is written."""

    def __init__(self, logger: logging.Logger, secret_values: list[str], integration_id: str) -> None:
        super().__init__(logger, {"integration_id": integration_id})
        self._secret_values = secret_values

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            kwargs.pop("exc_info", None)  # a traceback could quote a secret from a local variable
            super().log(level, redact(text, self._secret_values), **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs


@dataclass
class ConnectorCall:
    """One call into a connector: the instance, its context, and what to redact from anything recorded."""

    connector: Connector
    context: ConnectorContext
    client: RecordingClient
    secret_values: list[str]

    def redact(self, text: str) -> str:
        return redact(text, self.secret_values)


@dataclass(frozen=True)
class _Prepared:
    """What stays the same between calls for one integration: decrypted settings, client, logger."""

    settings: dict[str, Any]
    signing_secret: str | None
    secret_values: list[str]
    client: RecordingClient
    logger: RedactingLogger


def _prepare(runtime: Runtime, integration: Integration, registered: RegisteredConnector) -> _Prepared:
    """Decrypt once per integration and thread (not per event), renewed when the integration changes."""
    cache: dict[tuple[str, Any], _Prepared] = getattr(_local, "prepared", None) or {}
    _local.prepared = cache
    key = (integration.id, integration.updated_at)
    prepared = cache.get(key)
    if prepared is None:
        if len(cache) >= _MAX_CLIENTS:
            for old in cache.values():
                old.client.close()
            cache.clear()
        manifest = registered.manifest
        settings = runtime.keyring.open(integration.settings, manifest.secret_keys)
        signing_secret = runtime.keyring.decrypt(integration.signing_secret) if integration.signing_secret else None
        secret_values = [str(settings[k]) for k in manifest.secret_keys if settings.get(k)]
        if signing_secret:
            secret_values.append(signing_secret)
        logger = logging.getLogger(f"interlink.connector.{manifest.service}")
        prepared = _Prepared(
            settings=settings,
            signing_secret=signing_secret,
            secret_values=secret_values,
            client=recording_client(secrets=secret_values),
            logger=RedactingLogger(logger, secret_values, integration.id),
        )
        cache[key] = prepared
    prepared.client.clear()
    return prepared


def connector_call(runtime: Runtime, integration: Integration, registered: RegisteredConnector) -> ConnectorCall:
    """Prepare a call into ``registered``'s connector for ``integration`` (settings decrypted)."""
    prepared = _prepare(runtime, integration, registered)
    context = ConnectorContext(
        integration_id=integration.id,
        settings=dict(prepared.settings),
        http=prepared.client,
        logger=prepared.logger,
        signing_secret=prepared.signing_secret,
        inbound_key_hash=integration.inbound_key_hash,
    )
    return ConnectorCall(registered.connector_class(), context, prepared.client, prepared.secret_values)
