"""The built-in ``custom`` connector passes the conformance suite, as any connector author's would."""

from __future__ import annotations

from interlink.testing import ConnectorSuite


class TestCustomConnector(ConnectorSuite):
    service = "custom"
    url_setting = "url"
