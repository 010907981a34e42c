"""The plugin hooks: this module is the connector author's manual.

A plugin is a module named by an entry point in the ``interlink`` group of a distribution::

    [project.entry-points.interlink]
    acme = "acme_interlink.plugin"

The module defines functions decorated with :data:`hookimpl` whose names match the hooks below.
Interlink loads each entry point on its own: a plugin that fails to import or registers something
invalid is reported by ``interlink connectors list`` and skipped, and the server keeps running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from interlink.registry import Register

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec", "register_connectors"]

PROJECT_NAME = "interlink"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -- Registration phase: called once per plugin, when the registry is built. --


@hookspec
def register_connectors(register: Register) -> None:
    """Register the connectors this plugin provides.

    Called once, when the registry loads the plugin. Call ``register(ConnectorClass, manifest)`` once per
    connector: ``ConnectorClass`` subclasses :class:`interlink.connector.Connector`; ``manifest`` is
    a path to the manifest JSON file, or the manifest as a dict. The manifest is validated against the
    meta-schema; the class must implement every capability the manifest declares. A service id that
    another plugin already registered is rejected and reported, never renamed. Returns nothing.
    """
