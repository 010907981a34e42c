"""Vendor emulators: local HTTP servers that follow each vendor's documented contract (``vendors.md``).

Tests point a connector's ``baseUrl`` at one; ``interlink emulate SERVICE --port N`` runs one in the
foreground so a person can try a whole flow with no vendor account. Each module holds one vendor's
emulator; :data:`EMULATORS` maps a service id to ``module:class``, imported on first use.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interlink.testing.emulators.base import Emulator

__all__ = ["EMULATORS", "ENTRY_POINT_GROUP", "emulator_class", "emulator_services"]

EMULATORS: dict[str, str] = {
    "adapty": "interlink.testing.emulators.adapty:AdaptyEmulator",
    "adjust": "interlink.testing.emulators.adjust:AdjustEmulator",
    "app_store_connect": "interlink.testing.emulators.app_store:AppStoreEmulator",
    "appsflyer": "interlink.testing.emulators.appsflyer:AppsFlyerEmulator",
    "custom": "interlink.testing.emulators.custom:CustomEmulator",
    "google_play": "interlink.testing.emulators.google_play:GooglePlayEmulator",
    "klaviyo": "interlink.testing.emulators.klaviyo:KlaviyoEmulator",
    "revenuecat": "interlink.testing.emulators.revenuecat:RevenueCatEmulator",
    "stripe": "interlink.testing.emulators.stripe:StripeEmulator",
    "warehouse": "interlink.testing.emulators.warehouse:WarehouseEmulator",
}
"""Service id to the emulator class, as ``module:class``."""


ENTRY_POINT_GROUP = "interlink.emulators"
"""Where a connector package names its emulator (``acme = "interlink_acme.emulator:AcmeEmulator"``)."""


def emulator_services() -> list[str]:
    """Every service with an emulator: the built-ins', and those installed packages name."""
    return sorted({*EMULATORS, *(ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))})


def emulator_class(service: str) -> type[Emulator]:
    """The emulator class of ``service``, built in or named by an installed package; ``KeyError`` if none."""
    if service in EMULATORS:
        module, _, name = EMULATORS[service].partition(":")
        found: type[Emulator] = getattr(importlib.import_module(module), name)
        return found
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == service:
            loaded: type[Emulator] = entry.load()
            return loaded
    raise KeyError(service)
