"""The ``interlink`` pytest plugin (entry point ``pytest11``): registers the ``conformance`` marker.

It collects nothing by itself: the suite runs where a test module subclasses
:class:`interlink.testing.ConnectorSuite`.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker every check of the conformance suite carries."""
    config.addinivalue_line("markers", "conformance: a check of the Interlink connector conformance suite")
