"""Every built-in connector that speaks its vendor's API passes the conformance suite, against the vendor
emulator Interlink ships for it, as any connector author's would."""

from __future__ import annotations

from interlink.testing import ConnectorSuite


class TestCustomConnector(ConnectorSuite):
    service = "custom"
    url_setting = "url"


class TestStripeConnector(ConnectorSuite):
    service = "stripe"


class TestKlaviyoConnector(ConnectorSuite):
    service = "klaviyo"


class TestRevenueCatConnector(ConnectorSuite):
    service = "revenuecat"


class TestAdaptyConnector(ConnectorSuite):
    service = "adapty"


class TestWarehouseConnector(ConnectorSuite):
    service = "warehouse"


class TestAppsFlyerConnector(ConnectorSuite):
    service = "appsflyer"


class TestAdjustConnector(ConnectorSuite):
    service = "adjust"


class TestAppStoreConnector(ConnectorSuite):
    service = "app_store_connect"


class TestGooglePlayConnector(ConnectorSuite):
    service = "google_play"
