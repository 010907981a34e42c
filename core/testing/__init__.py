"""``interlink.testing``: the conformance suite for connector authors, and the tools it is built from.

* :class:`ConnectorSuite` -- subclass it in your tests; every check is a named pytest test;
* :class:`FaultProxy`, :class:`Fault` -- a local proxy that injects 429, 5xx, hangs and resets;
* :class:`EchoSink` -- the default vendor emulator (answers 200 to everything);
* :func:`valid_settings`, :func:`invalid_settings` -- hypothesis strategies from a manifest's schema.

Names are imported on first use, so the pytest plugin that ships here costs nothing at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interlink.testing.proxy import Fault, FaultProxy
    from interlink.testing.sink import EchoSink
    from interlink.testing.strategies import example_settings, invalid_settings, valid_settings
    from interlink.testing.suite import CHECKS, ConnectorSuite

__all__ = [
    "CHECKS",
    "ConnectorSuite",
    "EchoSink",
    "Fault",
    "FaultProxy",
    "example_settings",
    "invalid_settings",
    "valid_settings",
]

_WHERE = {
    "CHECKS": "suite",
    "ConnectorSuite": "suite",
    "EchoSink": "sink",
    "Fault": "proxy",
    "FaultProxy": "proxy",
    "example_settings": "strategies",
    "invalid_settings": "strategies",
    "valid_settings": "strategies",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'interlink.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"interlink.testing.{_WHERE[name]}"), name)
