"""Plugin discovery (`interlink.registry`): one loading path for built-in and third-party connectors.

Each entry point of the ``interlink`` group is loaded on its own, in a stable order (the built-ins of
the ``interlink`` distribution first, then by entry point name), inside its own
``try``: a plugin that fails to import, registers something invalid, or claims a service id already
taken is recorded as a :class:`BrokenPlugin` and skipped. Nothing a plugin does can stop the server.

``INTERLINK_PLUGINS_ALLOW`` and ``INTERLINK_PLUGINS_BLOCK`` (comma-separated entry point names) narrow
what is loaded, as datasette, llm and pytest allow.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from interlink import hookspecs
from interlink.connector import Connector
from interlink.manifest import Manifest, ManifestError, load_manifest

__all__ = ["BrokenPlugin", "ConnectorRegistry", "Register", "RegisteredConnector", "load_registry"]

log = logging.getLogger(__name__)

CORE_DISTRIBUTION = "interlink"


class PluginError(Exception):
    """A plugin registered something the registry cannot accept."""


@dataclass(frozen=True)
class RegisteredConnector:
    """A connector class paired with its validated manifest and the distribution that supplied it."""

    manifest: Manifest
    connector_class: type[Connector]
    entry_point: str
    distribution: str
    distribution_version: str

    @property
    def service(self) -> str:
        return self.manifest.service


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin (or one registration of it) that was skipped, and why."""

    entry_point: str
    distribution: str
    distribution_version: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return {
            "entry_point": self.entry_point,
            "distribution": self.distribution,
            "version": self.distribution_version,
            "error": self.error,
        }


@dataclass
class ConnectorRegistry:
    """The connectors that loaded, and the plugins that did not."""

    connectors: dict[str, RegisteredConnector] = field(default_factory=dict)
    broken: list[BrokenPlugin] = field(default_factory=list)

    def get(self, service: str) -> RegisteredConnector | None:
        return self.connectors.get(service)

    def manifests(self) -> list[Manifest]:
        return [c.manifest for c in sorted(self.connectors.values(), key=lambda c: c.service)]


class Register:
    """The callable handed to ``register_connectors``: checks a class and pairs it with its manifest."""

    def __init__(self, registry: ConnectorRegistry, entry_point: metadata.EntryPoint) -> None:
        self._registry = registry
        self._entry_point = entry_point
        self._dist_name, self._dist_version = _distribution_of(entry_point)
        self.calls = 0

    def __call__(self, connector_class: Any, manifest: str | Path | Mapping[str, Any] | Manifest) -> None:
        self.calls += 1
        try:
            self._register(connector_class, manifest)
        except (PluginError, ManifestError) as exc:
            self._report(str(exc))

    def _register(self, connector_class: Any, manifest: str | Path | Mapping[str, Any] | Manifest) -> None:
        if not (isinstance(connector_class, type) and issubclass(connector_class, Connector)):
            raise PluginError(
                f"register() got {connector_class!r}: a connector must subclass interlink.connector.Connector"
            )
        loaded = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
        missing = loaded.capabilities - connector_class.implemented_capabilities()
        if missing:
            raise PluginError(
                f"{connector_class.__name__} declares {', '.join(sorted(missing))} in its manifest "
                "but does not implement it"
            )
        taken = self._registry.connectors.get(loaded.service)
        if taken is not None:
            raise PluginError(
                f"service id '{loaded.service}' is already registered by entry point "
                f"'{taken.entry_point}' of {taken.distribution}; this registration was skipped"
            )
        connector_class.manifest = loaded
        self._registry.connectors[loaded.service] = RegisteredConnector(
            manifest=loaded,
            connector_class=connector_class,
            entry_point=self._entry_point.name,
            distribution=self._dist_name,
            distribution_version=self._dist_version,
        )

    def _report(self, error: str) -> None:
        broken = BrokenPlugin(self._entry_point.name, self._dist_name, self._dist_version, error)
        log.warning(
            "plugin %s (%s %s) skipped: %s", broken.entry_point, broken.distribution, broken.distribution_version, error
        )
        self._registry.broken.append(broken)


def load_registry(entry_points: Iterable[metadata.EntryPoint] | None = None) -> ConnectorRegistry:
    """Load every allowed entry point of the ``interlink`` group into a new registry.

    Pass ``entry_points`` to load a chosen set instead (tests do).
    """
    registry = ConnectorRegistry()
    candidates = entry_points if entry_points is not None else metadata.entry_points(group="interlink")
    allow = _env_list("INTERLINK_PLUGINS_ALLOW")
    block = _env_list("INTERLINK_PLUGINS_BLOCK") or set()
    for ep in sorted(candidates, key=_load_order):
        if (allow is not None and ep.name not in allow) or ep.name in block:
            continue
        _load_one(registry, ep)
    return registry


def _load_one(registry: ConnectorRegistry, ep: metadata.EntryPoint) -> None:
    register = Register(registry, ep)
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    try:
        module = ep.load()
        pm.register(module, name=ep.name)
        pm.check_pending()
        pm.hook.register_connectors(register=register)
    except Exception as exc:  # a plugin must never take the server down
        register._report(f"{type(exc).__name__}: {exc}")
        return
    if register.calls == 0:
        register._report("registered no connector: is register_connectors decorated with @hookimpl?")


def _load_order(ep: metadata.EntryPoint) -> tuple[bool, str, str]:
    """Our own built-ins first, so no package can take a built-in's service id; then by name."""
    return (_distribution_of(ep)[0] != CORE_DISTRIBUTION, ep.name, ep.value)


def _distribution_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return ("unknown", "")
    return (dist.metadata["Name"] or "unknown", dist.version or "")


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return {part.strip() for part in value.split(",") if part.strip()}
